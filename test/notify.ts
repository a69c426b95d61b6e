/** A NOTIFY_SOCKET receiver for the sd_notify tests of the master and the dyno driver. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fixture, until } from './harness.js';

const receivers = new Set<ChildProcess>();

/** Stops every receiver started since the last call (each test's afterEach). */
export function stopNotifyReceivers(): void {
  for (const r of receivers) r.kill('SIGTERM');
  receivers.clear();
}

/** A NOTIFY_SOCKET receiver (test/fixtures/notify-receiver.py): every datagram, as its lines. */
export async function notifyReceiver(dir: string): Promise<{ path: string; got: string[][] }> {
  const path = join(dir, 'notify.sock');
  const p = spawn('python3', [fixture('notify-receiver.py'), path], { stdio: ['ignore', 'pipe', 'inherit'] });
  receivers.add(p);
  const got: string[][] = [];
  let buf = '';
  p.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      got.push(JSON.parse(buf.slice(0, i)) as string[]);
      buf = buf.slice(i + 1);
    }
  });
  await until('the notify receiver', () => got.length > 0);
  got.shift();
  return { path, got };
}
