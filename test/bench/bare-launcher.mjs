// The baseline of the start-up bench: the least a launcher can do to run the same
// children as einhyrningsins does. It binds the socket with `net`, serves an ACK
// socket, spawns N children with the listening fd at 3 and einhorn's environment,
// and stops them on SIGTERM. No supervision, no options, no control protocol.
//
// Usage: node bare-launcher.mjs N SOCKET_PATH PROGRAM [ARGS...]
import { spawn } from 'node:child_process';
import net from 'node:net';
import { rmSync } from 'node:fs';

const [n, sockPath, program, ...args] = process.argv.slice(2);
const children = [];
const listener = net.createServer().listen({ host: '127.0.0.1', port: 0, backlog: 100 }, () => {
  const acks = net.createServer((c) => c.resume()).listen(sockPath, () => {
    const env = {
      ...process.env,
      EINHORN_FD_COUNT: '1',
      EINHORN_FD_0: '3',
      EINHORN_SOCK_PATH: sockPath,
      EINHORN_MASTER_PID: String(process.pid),
    };
    for (let i = 0; i < Number(n); i++) {
      env.EINHORN_CHILD_INDEX = String(i);
      children.push(spawn(program, args, { stdio: ['ignore', 'inherit', 'inherit', listener._handle.fd], env }));
    }
  });
  process.on('SIGTERM', () => {
    let left = children.length;
    for (const c of children) {
      c.once('exit', () => {
        if (--left === 0) {
          acks.close();
          rmSync(sockPath, { force: true });
          process.exit(0);
        }
      });
      c.kill('SIGTERM');
    }
  });
});
