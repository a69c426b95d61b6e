// Benchmark child for `npm run bench`: a tiny keep-alive HTTP server (200 "ok\n").
//
// Under einhyrningsins (EINHORN_MASTER_PID set): listens on the first inherited
// socket, ACKs on EINHORN_SOCK_PATH, drains gracefully on SIGUSR2 (worker library).
// Baseline (no supervisor): listens on EINHORN_FD_0 (fd 3) and exits on SIGTERM.
// With BENCH_READY_DIR set it writes <dir>/<pid> once it listens (the baseline's
// only readiness signal); with BENCH_ACKED_STDOUT=1 it prints `acked PID` once its
// ACK is written (the start-up bench). BENCH_DRAIN_MODE=exit (exit at once on SIGUSR2) or
// =http-close (plain `server.close()`) are negative controls: they must make the
// zero-downtime phase count errors. With BENCH_TRACE_DIR set (the window phase's trace,
// BENCH_WINDOW_TRACE=1) every response carries `X-Pid` and the child appends its own
// events (`origin` = its start, `listen`, `ack`, `drain`, `exit`, as epoch ms) to <dir>/<pid>.events.
import http from 'node:http';
import { appendFileSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { ack, gracefulDrain, sockets } from 'einhyrningsins/worker';

const BODY = Buffer.from('ok\n');
const traceDir = process.env.BENCH_TRACE_DIR;
const HEADERS = { 'Content-Type': 'text/plain', 'Content-Length': String(BODY.length), ...(traceDir ? { 'X-Pid': String(process.pid) } : {}) };
const supervised = process.env.EINHORN_MASTER_PID !== undefined;
const traceEvent = (what) => {
  if (traceDir) appendFileSync(join(traceDir, `${process.pid}.events`), `${what} ${(performance.timeOrigin + performance.now()).toFixed(1)}\n`);
};

const server = http.createServer((req, res) => {
  res.writeHead(200, HEADERS);
  res.end(BODY);
});
server.keepAliveTimeout = 10_000;

const drainMode = process.env.BENCH_DRAIN_MODE ?? 'graceful';
// BENCH_GRACEFUL=1: install gracefulDrain in baseline mode too (to tell its per-request
// cost from the supervisor's).
if ((supervised || process.env.BENCH_GRACEFUL === '1') && drainMode === 'graceful') gracefulDrain(server);
else if (drainMode === 'exit') process.on('SIGUSR2', () => process.exit(0));
else if (drainMode === 'http-close') process.on('SIGUSR2', () => server.close(() => process.exit(0)));
process.on('SIGTERM', () => process.exit(0));
if (traceDir) {
  appendFileSync(join(traceDir, `${process.pid}.events`), `origin ${performance.timeOrigin.toFixed(1)}\n`);
  if (process.listenerCount('SIGUSR2') > 0) process.prependListener('SIGUSR2', () => traceEvent('drain'));
  process.prependListener('SIGTERM', () => traceEvent('drain'));
  process.on('exit', () => traceEvent('exit'));
}

const [fd] = sockets();
if (fd === undefined) {
  process.stderr.write('bench child: no inherited socket (EINHORN_FD_COUNT/EINHORN_FD_0)\n');
  process.exit(1);
}
server.listen({ fd }, () => {
  traceEvent('listen');
  if (process.env.BENCH_READY_DIR) writeFileSync(join(process.env.BENCH_READY_DIR, String(process.pid)), 'ready\n');
  if (supervised && process.env.EINHORN_SOCK_PATH) {
    ack().then(() => {
      traceEvent('ack');
      // The start-up bench counts these lines on the supervisor's stdout, which the child shares.
      if (process.env.BENCH_ACKED_STDOUT === '1') process.stdout.write(`acked ${process.pid}\n`);
    }, (err) => {
      process.stderr.write(`bench child ${process.pid}: ack failed: ${err.message}\n`);
      process.exit(1);
    });
  }
});
