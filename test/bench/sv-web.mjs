// The web program of the supervisor comparison (test/bench/supervisors.ts): answers
// "ok PID" to every request. Where its socket comes from depends on who runs it:
// einhyrningsins-dyno's socket= (EINHORN_FD_0, then it ACKs), supervisord's
// fcgi-program (the listening socket is its stdin), or neither: it binds $PORT itself
// (a plain supervisord program). SIGTERM: stop accepting, finish what is in flight, exit.
import http from 'node:http';
import { fstatSync } from 'node:fs';

const server = http.createServer((req, res) => {
  const body = `ok ${process.pid}\n`;
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
const einhorn = Number(process.env.EINHORN_FD_COUNT ?? 0) > 0;
let target;
if (einhorn) target = { fd: Number(process.env.EINHORN_FD_0) };
else if (fstatSync(0).isSocket()) target = { fd: 0 };
else target = { host: '127.0.0.1', port: Number(process.env.PORT) };

process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 5000).unref();
});
server.listen(target, async () => {
  process.stdout.write(`web ${process.pid} listening\n`);
  if (einhorn) {
    const { ack } = await import('../../packages/ctl/dist/src/worker.js');
    await ack();
  }
});
