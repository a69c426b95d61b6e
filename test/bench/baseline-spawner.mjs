// The bench baseline's process starter (test/bench/systems.ts, Baseline): it holds the
// listening socket (fd 3) and starts the bench children on it when asked, so that their
// fork happens in this small process, as in Server::Starter, and not in the bench process:
// that one runs the load generator, and a fork there write-protects its memory (every write
// after it faults) and slowed the load for ~0.7 s after each baseline restart.
//
// stdin: `spawn N` lines; stdout: `pid PID` once per child started, `exit PID CODE|SIGNAL`
// when one exits. When stdin closes it sends SIGTERM to the children left and exits once
// they are gone. The children's stdout goes to stderr (stdout is the protocol).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const child = process.argv[2];
if (!child) {
  process.stderr.write('baseline spawner: usage: baseline-spawner.mjs CHILD.mjs\n');
  process.exit(2);
}
const live = new Set();
let closing = false;
const done = () => {
  if (closing && live.size === 0) process.exit(0);
};
createInterface({ input: process.stdin })
  .on('line', (line) => {
    const m = /^spawn (\d+)$/.exec(line);
    if (!m) {
      process.stderr.write(`baseline spawner: unknown command: ${line}\n`);
      return;
    }
    for (let i = 0; i < Number(m[1]); i++) {
      const p = spawn(process.execPath, [child], { stdio: ['ignore', 2, 2, 3] });
      live.add(p);
      process.stdout.write(`pid ${p.pid}\n`);
      p.once('exit', (code, sig) => {
        live.delete(p);
        process.stdout.write(`exit ${p.pid} ${code ?? sig}\n`);
        done();
      });
    }
  })
  .on('close', () => {
    closing = true;
    for (const p of live) p.kill('SIGTERM');
    done();
  });
