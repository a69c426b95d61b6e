// The scale phase's baseline for the time to spawn N workers (test/bench/scale.ts): the same
// launcher with the same arguments and einhorn's variables, every child spawned in one bare
// synchronous loop (what the master did before it spawned in turns), ACKs counted on the
// control socket path. Prints "all N acked" once the Nth ACK arrived; on SIGTERM stops
// every child and exits once they are gone.
//
// Usage: node bare-spawn.mjs N SOCKET_PATH LAUNCHER PROGRAM
import { spawn } from 'node:child_process';
import net from 'node:net';
import { rmSync } from 'node:fs';

const [nText, sockPath, launcher, program] = process.argv.slice(2);
const n = Number(nText);
const children = [];
let acked = 0;
const acks = net.createServer((c) => {
  let buf = '';
  c.on('data', (d) => {
    buf += d;
    if (!buf.includes('\n')) return;
    c.end();
    if (++acked === n) process.stdout.write(`all ${n} acked\n`);
  });
  c.on('error', () => {});
});
acks.listen(sockPath, () => {
  const env = { ...process.env, EINHORN_FD_COUNT: '0', EINHORN_SOCK_PATH: sockPath, EINHORN_MASTER_PID: String(process.pid) };
  for (let i = 0; i < n; i++) {
    env.EINHORN_CHILD_INDEX = String(i);
    children.push(spawn(launcher, ['--setpgid', '--close-from', '3', '--', program, program], { stdio: ['inherit', 'inherit', 'inherit'], env }));
  }
});
process.on('SIGTERM', () => {
  let left = children.length;
  const done = () => {
    acks.close();
    rmSync(sockPath, { force: true });
    process.exit(0);
  };
  if (left === 0) done();
  for (const c of children) {
    c.once('exit', () => {
      if (--left === 0) done();
    });
    c.kill('SIGTERM');
  }
});
