/**
 * The control socket under abuse: one master takes ACK floods, half-closed
 * and concurrent clients, over-long lines, garbage and a seeded fuzz loop,
 * and afterwards still runs, still lists exactly its workers, holds no more
 * fds than before and logged no internal error. Then the connection limit.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { createConnection, type Socket } from 'node:net';
import { LineSplitter, decodeReply, parseRequest } from '@einhyrningsins/protocol';
import { MAX_CONNECTIONS, MAX_LINE_BYTES } from '@einhyrningsins/master';
import { alive, childrenOf, cleanupAll, fixture, startMaster, until, type CtlReply, type MasterProc } from './harness.js';
import { openFdCount } from './proc.js';
import { prng } from '@einhyrningsins/protocol/test/prng';

// Subtests of the shared-master test inherit this hook: they must not stop
// the master under the next subtest. The parent test clears the flag when it ends.
let sharedMaster = false;
afterEach(async () => {
  if (sharedMaster) return;
  const problems = await cleanupAll();
  assert.deepEqual(problems, [], 'nothing may be left behind');
});

const node = process.execPath;

/** The fd count once the master has closed the connections of earlier requests (same for 3 polls). */
async function steadyFdCount(pid: number): Promise<number> {
  const seen: number[] = [];
  return await until('a steady fd count', () => {
    seen.push(openFdCount(pid));
    const last = seen.slice(-3);
    return last.length === 3 && last.every((n) => n === last[0]) ? last[0] : null;
  }, 10_000, 100);
}

/** A raw connection: send bytes, read decoded replies, see when the master closes. */
class Raw {
  readonly sock: Socket;
  readonly replies: CtlReply[] = [];
  readonly badLines: string[] = [];
  closed = false;
  ended = false;
  readonly connected: Promise<void>;
  readonly done: Promise<void>;
  private readonly splitter = new LineSplitter({ maxLineLength: 4 * 1024 * 1024 });

  constructor(path: string) {
    this.sock = createConnection(path);
    this.sock.on('error', () => {
      /* EPIPE / ECONNRESET are expected in these tests; 'close' follows */
    });
    this.connected = new Promise((resolve, reject) => {
      this.sock.once('connect', () => resolve());
      this.sock.once('error', reject);
    });
    this.sock.on('data', (chunk: Buffer) => {
      for (const item of this.splitter.push(chunk)) {
        if ('error' in item) continue;
        const d = decodeReply(item.line);
        if (d.ok) this.replies.push(d.reply as CtlReply);
        else this.badLines.push(item.line);
      }
    });
    this.sock.on('end', () => (this.ended = true));
    this.done = new Promise((resolve) =>
      this.sock.once('close', () => {
        this.closed = true;
        resolve();
      }),
    );
  }

  write(data: string | Buffer): void {
    this.sock.write(data);
  }

  /** Wait until `n` replies have arrived in all. */
  async replyCount(n: number, what: string): Promise<CtlReply[]> {
    await until(`${n} replies (${what}); have ${JSON.stringify(this.replies).slice(0, 300)}`, () => this.replies.length >= n || this.closed);
    assert.ok(this.replies.length >= n, `${what}: the master closed the connection after ${this.replies.length} replies`);
    return this.replies;
  }

  destroy(): void {
    this.sock.destroy();
  }
}

function countWorkers(stateMessage: string): number {
  return (stateMessage.match(/:type: :worker/g) ?? []).length;
}


/**
 * One fuzz line (without its newline). It never forms a command that changes
 * the master (inc, dec, set_workers, upgrade, signal, die, ...): only
 * read-only commands, unknown ones, re-ACKs and garbage.
 */
function fuzzLine(rand: () => number, workerPid: number): Buffer {
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
  const safe = ['state', 'status', 'version', 'help', 'ehlo', 'nope', 'worker:pong', '', 'STATE', 'state ', '\u0000'];
  const requests = [
    () => JSON.stringify({ command: pick(safe), id: int(1000), args: [] }),
    () => JSON.stringify({ command: pick(safe), args: [pick(['a', 'b', '%0A', '%25'])], user: 'fuzz' }),
    () => `---%0Acommand: ${pick(safe)}%0Aid: ${int(99)}%0Aargs: []%0A`,
  ];
  // An ACK or ping ends the connection (the master closes it), so these are rare.
  const closing = [
    () => JSON.stringify({ command: 'worker:ack', pid: pick([workerPid, 1, 0, -1, 2 ** 53, 1e308]) }),
    () => `---%0A:command: worker:ping%0A:pid: ${workerPid}%0A:request_id: ${int(1e6)}%0A`,
  ];
  const template = () => (rand() < 0.02 ? pick(closing) : pick(requests))();
  const fragments = [
    '---', '--- !ruby/object:Set {}', '{command: *a}', '&a [*a, *a, *a]', '!!binary aGVsbG8=', ':command: [', '- - - -',
    '{"command":', '{"command":"state","args":', '%0A%0A%0A', '%25%25%ZZ%', '%', '? a : b', '"', "'", '|-', '>',
    'command: [state]', 'command: {a: 1}', 'command: 12', 'command: null', 'command: ~', 'args: state',
    '{"command":"state","args":"notalist"}', '{"command":"state","args":[{"a":1}]}', '{"command":"state","args":[null]}',
    '{"command":"state","id":{"x":1}}', '{"__proto__":{"command":"die"}}', '{"constructor":{"prototype":{}}}',
    '[1,2,3]', '"just a string"', 'true', '12', '1e999', '-', '\t', '\r', '\u2028', '\ufeff{"command":"state"}',
  ];
  const nested = (depth: number, open: string, close: string) => open.repeat(depth) + close.repeat(depth);
  switch (int(8)) {
    case 0: {
      const b = Buffer.alloc(1 + int(300));
      for (let i = 0; i < b.length; i++) b[i] = int(256);
      for (let i = 0; i < b.length; i++) if (b[i] === 0x0a) b[i] = 0x20;
      return b;
    }
    case 1: {
      const full = template();
      return Buffer.from(full.slice(0, int(full.length + 1)));
    }
    case 2:
      return Buffer.from(pick(fragments) + (rand() < 0.5 ? pick(fragments) : ''));
    case 3: {
      const huge = pick(['9'.repeat(400), '1e309', '-1e309', String(2 ** 64), '0x' + 'f'.repeat(64), '1'.repeat(20) + '.5']);
      return Buffer.from(pick([`{"command":"state","id":${huge}}`, `{"command":"worker:ack","pid":${huge}}`, `{"command":"nope","args":[${huge}]}`, `---%0Aid: ${huge}%0Acommand: state%0A`]));
    }
    case 4: {
      const depth = 1 + int(300);
      return Buffer.from(pick([nested(depth, '[', ']'), `{"command":"state","args":${nested(depth, '[', ']')}}`, nested(depth, '{a: ', '}'), nested(depth, '- ', '') + 'x']));
    }
    case 5: {
      // Invalid UTF-8 inside otherwise valid requests.
      const bad = pick([[0xc3, 0x28], [0xff, 0xfe], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe2, 0x82]]);
      return Buffer.concat([Buffer.from('{"command":"'), Buffer.from(bad), Buffer.from(`","id":${int(100)}}`)]);
    }
    case 6:
      return Buffer.from(template());
    default: {
      // A valid template with a few random bytes flipped.
      const b = Buffer.from(template());
      for (let k = 0; k < 1 + int(3); k++) {
        const at = int(b.length);
        b[at] = int(256);
        if (b[at] === 0x0a) b[at] = 0x7b;
      }
      return b;
    }
  }
}

/**
 * How many replies the master owes for these bytes: one per non-empty line (a line over the
 * limit gets one error reply too), up to the first worker:ack / worker:ping, after which it
 * closes the connection.
 */
function expectedReplies(bytes: Buffer): number {
  let n = 0;
  for (const item of new LineSplitter({ maxLineLength: MAX_LINE_BYTES }).push(bytes)) {
    if ('line' in item) {
      const p = parseRequest(item.line);
      if (p.ok && (p.request.command === 'worker:ack' || p.request.command === 'worker:ping')) {
        // The test is not the worker: one with a pid is refused with an error reply, then closed.
        if (p.request.pid !== undefined) n += 1;
        break;
      }
    }
    n += 1;
  }
  return n;
}

async function stateOf(m: MasterProc): Promise<CtlReply> {
  const [r] = await m.ctl('state');
  assert.ok(r, 'state answered');
  return r;
}

test('one master survives ACK floods, half-closes, concurrency, long lines, garbage and fuzz', { timeout: 180_000 }, async (t) => {
  const m = startMaster(['-n', '2', '-b', '127.0.0.1:0,r', '-m', 'manual', '--', node, fixture('node-http-child.mjs')], {
    env: { FIXTURE_ACK: '1' },
  });
  await m.port();
  const workers = await m.ready(2);
  let pids = workers.map((w) => w.pid).sort((a, b) => a - b);
  let pid0 = pids[0] as number;
  // Warm up (libuv opens some fds lazily), then take the baseline with no client connected.
  for (let i = 0; i < 3; i++) await stateOf(m);
  const baseline = await steadyFdCount(m.pid);
  sharedMaster = true;
  try {
    await t.test('(a) 200 ACK clients that write and destroy at once', async () => {
      const line = JSON.stringify({ command: 'worker:ack', pid: pid0 }) + '\n';
      for (let batch = 0; batch < 4; batch++) {
        const conns = Array.from({ length: 50 }, () => new Raw(m.sockPath));
        await Promise.all(
          conns.map(async (c) => {
            await c.connected;
            c.write(line);
            c.destroy();
            await c.done;
          }),
        );
      }
      assert.equal(alive(m.pid), true);
      assert.equal(countWorkers((await stateOf(m)).message), 2);
    });

    await t.test('(b) half-closed connections still get their replies', async () => {
      const conns = Array.from({ length: 20 }, (_, i) => {
        const c = new Raw(m.sockPath);
        c.write(JSON.stringify({ command: 'state', id: i }) + '\n' + JSON.stringify({ command: 'version', id: `v${i}` }) + '\n');
        c.sock.end();
        return c;
      });
      await Promise.all(conns.map((c) => c.done));
      conns.forEach((c, i) => {
        assert.equal(c.replies.length, 2, `connection ${i}: ${JSON.stringify(c.replies).slice(0, 300)}`);
        assert.equal(c.replies[0]!.request_id, i);
        assert.equal(countWorkers(c.replies[0]!.message), 2);
        assert.equal(c.replies[1]!.request_id, `v${i}`);
        assert.match(c.replies[1]!.message, /^einhyrningsins /);
        assert.equal(c.ended, true, 'the master finished the connection cleanly');
      });
      // A request in einhorn's YAML framing, half-closed, without an id.
      const y = new Raw(m.sockPath);
      y.write('---%0Acommand: state%0A\n');
      y.sock.end();
      await y.done;
      assert.equal(y.replies.length, 1);
      assert.equal(countWorkers(y.replies[0]!.message), 2);
      // An upgrade, half-closed at once: the whole stream arrives, up to the final reply.
      const u = new Raw(m.sockPath);
      u.write(JSON.stringify({ command: 'upgrade', id: 'u' }) + '\n');
      u.sock.end();
      await until('the end of the upgrade stream', () => u.closed, 30_000);
      const messages = u.replies.map((r) => r.message);
      assert.equal(messages[0], 'Upgrading smoothly, as commanded');
      assert.equal(messages.at(-1), 'Upgrade done', messages.join(' | '));
      assert.ok(u.replies.slice(0, -1).every((r) => r.wait === true && r.request_id === 'u'));
      assert.equal(u.ended, true);
      for (const old of pids) await until(`old worker ${old} gone`, () => !alive(old));
      pids = (await m.ready(2)).map((w) => w.pid).sort((a, b) => a - b);
      pid0 = pids[0] as number;
    });

    await t.test('(c) 100 concurrent clients running state', async () => {
      const all = await Promise.all(Array.from({ length: 100 }, () => m.ctl('state', [], { timeoutMs: 20_000 })));
      for (const replies of all) {
        assert.equal(replies.length, 1);
        assert.equal(countWorkers(replies[0]!.message), 2);
        for (const p of pids) assert.match(replies[0]!.message, new RegExp(`^    ${p}:$`, 'm'));
      }
    });

    await t.test('(d) a line of 1 MiB is refused with "Request too long"; the connection stays usable', async () => {
      const big = Buffer.alloc(1 << 20, 'a');
      // Without a newline: the master answers as soon as the limit is passed.
      const c = new Raw(m.sockPath);
      c.write(big);
      const [tooLong] = await c.replyCount(1, 'reply to a 1 MiB line without newline');
      assert.match(tooLong!.message, /^Request too long/);
      assert.equal(tooLong!.error, true);
      // The rest of that line is skipped up to its newline; the next request works.
      c.write(Buffer.concat([Buffer.alloc(100_000, 'b'), Buffer.from('\n' + JSON.stringify({ command: 'version', id: 2 }) + '\n')]));
      const after = await c.replyCount(2, 'version after the long line');
      assert.equal(after.length, 2, 'one error reply per long line');
      assert.equal(after[1]!.request_id, 2);
      // With a newline: one error reply, then the connection answers again.
      c.write(Buffer.concat([big, Buffer.from('\n')]));
      c.write(JSON.stringify({ command: 'version', id: 3 }) + '\n');
      const more = await c.replyCount(4, 'reply to a 1 MiB line with newline, then version');
      assert.equal(more.length, 4);
      assert.match(more[2]!.message, /^Request too long/);
      assert.equal(more[3]!.request_id, 3);
      c.destroy();
      await c.done;
      assert.equal(alive(m.pid), true);
    });

    await t.test('(e) binary garbage and invalid UTF-8 get error replies', async () => {
      const c = new Raw(m.sockPath);
      c.write(Buffer.from([0x00, 0x01, 0xff, 0xfe, 0x80, 0x0a]));
      c.write(Buffer.concat([Buffer.from('{"command":"'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('","id":7}\n')]));
      c.write(Buffer.concat([Buffer.from('---%0Acommand: '), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('%0Aid: 8%0A\n')]));
      c.write(Buffer.from([0xef, 0xbb, 0xbf, 0x0d, 0x0a])); // a BOM and CRLF
      c.write(JSON.stringify({ command: 'version', id: 9 }) + '\n');
      await until('the version reply', () => c.replies.some((r) => r.request_id === 9) || c.closed);
      assert.deepEqual(c.badLines, [], 'every reply line decodes');
      const errors = c.replies.filter((r) => r.error === true);
      assert.ok(errors.length >= 3, `error replies: ${JSON.stringify(c.replies).slice(0, 500)}`);
      assert.equal(c.replies[0]!.message, 'Could not parse command');
      assert.match(c.replies[1]!.message, /^Unrecognized command: /);
      assert.equal(c.replies[1]!.request_id, 7);
      assert.equal(c.replies.at(-1)!.request_id, 9);
      c.destroy();
      await c.done;
    });

    await t.test('(f) unknown command, a pid that is not ours, a pid as a string', async () => {
      const [unknown] = await m.ctl('no_such_command', [], { id: 42 });
      assert.match(unknown!.message, /^Unrecognized command: "no_such_command"\n\n/);
      assert.equal(unknown!.error, true);
      assert.equal(unknown!.request_id, 42);
      // From this process, which is none of those pids: refused (one error reply), then closed.
      for (const pid of [1, 999_999_999, '123']) {
        const c = new Raw(m.sockPath);
        c.write(JSON.stringify({ command: 'worker:ack', pid }) + '\n');
        await c.done; // the master closes the connection after an ACK
        assert.equal(c.replies.length, 1, `one reply to an ACK of ${JSON.stringify(pid)}`);
        assert.match(c.replies[0]!.message, /^Refusing worker:ack for pid \d+/);
        assert.equal(c.replies[0]!.error, true);
      }
      // Not a pid at all: no reply, as einhorn.
      for (const pid of ['abc', -5]) {
        const c = new Raw(m.sockPath);
        c.write(JSON.stringify({ command: 'worker:ack', pid }) + '\n');
        await c.done;
        assert.equal(c.replies.length, 0, `no reply to an ACK of ${JSON.stringify(pid)}`);
      }
      // An ACK for a pid that is not a worker, from that very process: logged and ignored.
      const c = new Raw(m.sockPath);
      c.write(JSON.stringify({ command: 'worker:ack', pid: process.pid }) + '\n');
      await c.done;
      assert.equal(c.replies.length, 0);
      await m.waitLog(new RegExp(`Could not find state for PID ${process.pid}; ignoring ACK`));
      assert.deepEqual(
        (await m.workers()).map((w) => w.pid).sort((a, b) => a - b),
        pids,
      );
    });

    await t.test('(g) seeded fuzz: thousands of malformed lines over many connections', async () => {
      const seed = Number(process.env.FUZZ_SEED ?? 0x5eed);
      const rand = prng(seed);
      const connections = 60;
      const linesEach = 50;
      let sent = 0;
      let answered = 0;
      const expected = new Map<Raw, number>();
      for (let wave = 0; wave < connections / 10; wave++) {
        const conns = Array.from({ length: 10 }, () => {
          const c = new Raw(m.sockPath);
          const lines: Buffer[] = [];
          for (let i = 0; i < linesEach; i++) lines.push(fuzzLine(rand, pid0), Buffer.from('\n'));
          // Random chunking: requests split across writes at arbitrary bytes.
          const all = Buffer.concat(lines);
          expected.set(c, expectedReplies(all));
          for (let at = 0; at < all.length; ) {
            const n = 1 + Math.floor(rand() * 4096);
            c.write(all.subarray(at, at + n));
            at += n;
          }
          c.sock.end();
          sent += linesEach;
          return c;
        });
        try {
          await until(`fuzz connections of wave ${wave} to close`, () => conns.every((c) => c.closed), 30_000);
        } catch (err) {
          for (const c of conns) c.destroy();
          throw new Error(`${(err as Error).message} (seed ${seed})`);
        }
        for (const c of conns) {
          assert.deepEqual(c.badLines, [], `unreadable reply lines (seed ${seed})`);
          assert.equal(c.replies.length, expected.get(c), `one reply per request line up to the first ACK or ping (seed ${seed})`);
          answered += c.replies.length;
        }
        assert.equal(alive(m.pid), true, `master alive after wave ${wave} (seed ${seed})`);
      }
      t.diagnostic(`fuzz seed ${seed}: ${sent} lines, ${answered} replies`);
      assert.ok(answered > 0);
    });

    await t.test('afterwards: alive, exactly the same workers, fds back to the baseline, no internal error', async () => {
      assert.equal(alive(m.pid), true);
      assert.equal(m.exited, null);
      const st = await stateOf(m);
      assert.equal(countWorkers(st.message), 2);
      const listed = (st as unknown as { state: { workers: Array<{ pid: number; state: string }> } }).state.workers;
      assert.deepEqual(listed.map((w) => w.pid).sort((a, b) => a - b), pids);
      assert.ok(listed.every((w) => w.state === 'up'));
      assert.deepEqual(childrenOf(m.pid).sort((a, b) => a - b), pids, 'the processes are the listed workers');
      await until(`fd count back to ${baseline} (now ${openFdCount(m.pid)})`, () => openFdCount(m.pid) === baseline, 10_000, 50);
      assert.doesNotMatch(m.stderr, /internal error/i);
      assert.doesNotMatch(m.stderr, /^\s+at .+:\d+:\d+\)?$/m, 'no stack trace in the log');
      assert.doesNotMatch(m.stderr, /ERROR: control/);
    });
  } finally {
    sharedMaster = false;
  }
  const r = await m.stop();
  assert.equal(r.code, 0);
});

test(`more than ${MAX_CONNECTIONS} idle connections: the ones idle longest make room, the master still answers`, { timeout: 120_000 }, async () => {
  const m = startMaster(['-m', '0', '--', 'sleep', '1000']);
  await m.ready(1);
  await m.ctl('state');
  const baseline = await steadyFdCount(m.pid);
  const extra = 20;
  const conns: Raw[] = [];
  try {
    // One after the other, so the master accepts them in this order.
    for (let i = 0; i < MAX_CONNECTIONS + extra; i++) {
      const c = new Raw(m.sockPath);
      conns.push(c);
      await c.connected;
    }
    await until(`${extra} connections closed`, () => conns.filter((c) => c.closed).length >= extra, 20_000);
    await m.waitLog(/Control connections at the limit \(512\): closing the one idle longest/);
    const evicted = conns.map((c, i) => (c.closed ? i : -1)).filter((i) => i >= 0);
    assert.equal(evicted.length, extra, 'exactly as many as were past the limit');
    assert.ok(evicted.every((i) => i < extra), `the oldest idle ones: ${evicted.join(',')}`);
    // The newest connection works.
    const last = conns.at(-1) as Raw;
    last.write(JSON.stringify({ command: 'version', id: 1 }) + '\n');
    const [v] = await last.replyCount(1, 'version on the newest connection');
    assert.match(v!.message, /^einhyrningsins /);
  } finally {
    for (const c of conns) c.destroy();
    await Promise.all(conns.map((c) => c.done));
  }
  // Once ours are closed, the master answers new clients and holds no extra fd.
  const st = await until('state on a fresh connection', async () => (await m.ctl('state'))[0]);
  assert.equal(countWorkers(st.message), 1);
  await until(`fd count back to ${baseline} (now ${openFdCount(m.pid)})`, () => openFdCount(m.pid) === baseline, 10_000, 50);
  assert.equal(alive(m.pid), true);
  const r = await m.stop();
  assert.equal(r.code, 0);
});

for (const reloaded of [false, true]) {
  test(`1,000 clients connecting and sending while the master is busy wait in the backlog and are all answered: none refused with EAGAIN, none closed unread (1,000 workers ACKing at once)${reloaded ? ', after a reload' : ''}`, { timeout: 120_000 }, async () => {
    const m = startMaster(['-m', '0', '--', 'sleep', '1000']);
    await m.ready(1);
    if (reloaded) assert.match((await m.ctl('reload')).at(-1)!.message, /\(reload 1\)/);
    const socks: Socket[] = [];
    const refused: string[] = [];
    let answered = 0;
    let closedUnanswered = 0;
    const settled: Promise<void>[] = [];
    // Stopped, the master accepts nothing: every connection waits in the listen backlog, as
    // the ACKs of 1,000 workers do while the master is busy (a backlog of 511 refused the
    // rest; past the connection limit, the master then closed fresh ones unread).
    process.kill(m.pid, 'SIGSTOP');
    try {
      await Promise.all(
        Array.from({ length: 1000 }, () =>
          new Promise<void>((connected) => {
            const s = createConnection(m.sockPath);
            socks.push(s);
            settled.push(
              new Promise<void>((done) => {
                let got = '';
                s.on('data', (d) => {
                  got += d;
                  if (got.includes('\n')) {
                    answered++;
                    s.destroy();
                    done();
                  }
                });
                s.once('close', () => {
                  if (!got.includes('\n')) closedUnanswered++;
                  done();
                });
              }),
            );
            s.once('connect', () => connected());
            s.once('error', (err: NodeJS.ErrnoException) => {
              refused.push(err.code ?? err.message);
              connected();
            });
          }),
        ),
      );
    } finally {
      process.kill(m.pid, 'SIGCONT');
    }
    try {
      assert.deepEqual(refused, [], `${refused.length} of 1,000 connections refused`);
      // The master accepts them all; they write their request a moment later (a worker
      // descheduled between its connect and its write on a loaded machine): a connection
      // that has not been read yet is not "idle" enough to be closed to make room.
      await new Promise((r) => setTimeout(r, 300));
      for (const s of socks) s.write(JSON.stringify({ command: 'ehlo', user: 'w' }) + '\n');
      await Promise.race([Promise.all(settled), new Promise((r) => setTimeout(r, 60_000))]);
      assert.deepEqual({ answered, closedUnanswered }, { answered: 1000, closedUnanswered: 0 });
    } finally {
      for (const s of socks) s.destroy();
    }
    const st = await until('state once the master runs again', async () => (await m.ctl('state'))[0]);
    assert.equal(countWorkers(st.message), 1);
    assert.equal((await m.stop()).code, 0);
  });
}
