// The log-writing program of the supervisor comparison: LINES numbered lines of 100
// bytes on stdout, written as a block-buffered program writes to a pipe (C stdio,
// Python): in blocks of 4,096 bytes that end wherever the buffer is full, mid-line
// mostly. Then it stays up, quietly.
import { writeSync } from 'node:fs';

const n = Number(process.env.LINES ?? 20000);
const pad = 'x'.repeat(100 - 'line 000000 '.length - 1);
let buf = '';
for (let i = 1; i <= n; i++) {
  buf += `line ${String(i).padStart(6, '0')} ${pad}\n`;
  while (buf.length >= 4096) {
    writeAll(buf.slice(0, 4096));
    buf = buf.slice(4096);
  }
}
if (buf) writeAll(buf);

function writeAll(s) {
  const b = Buffer.from(s);
  let off = 0;
  while (off < b.length) {
    try {
      off += writeSync(1, b, off);
    } catch (err) {
      if (err.code !== 'EAGAIN') throw err;
    }
  }
}
setInterval(() => {}, 1 << 30);
process.on('SIGTERM', () => process.exit(0));
