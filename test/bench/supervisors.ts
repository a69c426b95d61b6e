/**
 * `npm run bench:supervisors`: einhyrningsins-dyno --config side by side with supervisord
 * (Debian's `supervisor`, 4.2.5 here) on this machine, with ONE INI file that both read
 * (supervisord ignores this project's keys, the driver warns about supervisord's
 * sections): start-up, `status`, `restart` of a socket program under load, log rotation,
 * `reread`/`update`, the supervisor's own memory. Each supervisor runs in its own temp
 * directory with its own control socket and is always stopped at the end.
 *
 * Not pass/fail: it prints a Markdown table (one column per supervisor; the README's
 * "Coming from supervisord / minisv" has one run of it) and writes the raw results as
 * JSON (BENCH_OUT, default: stdout only). To add a supervisor, add a `Runner` to RUNNERS:
 * how to start it on a config file, its `status` and restart commands, when its programs
 * are RUNNING, how to stop it.
 *
 * Environment: BENCH_RUNS (restarts under load per variant, default 3), BENCH_LINES
 * (lines the logger writes, default 20000), BENCH_CLIENTS (client loops, default 4),
 * BENCH_ONLY (the supervisors whose name starts with it), BENCH_KEEP=1 (keep the temp dirs).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ctl, freePort, ROOT } from '../harness.js';
import { statusKb } from '../proc.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const LINES = Number(process.env.BENCH_LINES ?? 20000);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 4);
const DYNO = join(ROOT, 'bin', 'einhyrningsins-dyno');
const CTL = join(ROOT, 'bin', 'einhyrningsinsctl');
const WEB = join(ROOT, 'test', 'bench', 'sv-web.mjs');
const LOGGER = join(ROOT, 'test', 'bench', 'sv-logger.mjs');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1] as number;

async function until<T>(what: string, fn: () => Promise<T | null> | T | null, timeoutMs = 30_000, everyMs = 20): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(everyMs);
  }
}


function run(cmd: string, args: string[]): Promise<{ out: string; ms: number; code: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolve({ out: `${stdout}${stderr}`, ms: performance.now() - t0, code: typeof code === 'number' ? code : 1 });
    });
  });
}

// ---- the one config ---------------------------------------------------------------

interface Layout {
  dir: string;
  port: number;
  /** `web` as a plain program (binds $PORT itself under supervisord), or supervisord's fcgi-program. */
  web: 'program' | 'fcgi-program';
  webProcs: number;
  /** The worker's command word that `update` changes. */
  workerArg: number;
  extra: boolean;
  logger: boolean;
}

function config(l: Layout): string {
  const web = [
    `[${l.web}:web]`,
    `command = ${process.execPath} ${WEB}`,
    `socket = tcp://127.0.0.1:${l.port}`,
    `environment = PORT="${l.port}"`,
    `numprocs = ${l.webProcs}`,
    'process_name = %(program_name)s_%(process_num)d',
    'stopsignal = TERM',
    'stopwaitsecs = 10',
    'stdout_logfile = %(here)s/web.log',
    'redirect_stderr = true',
  ];
  return [
    '; Read by both supervisord and einhyrningsins-dyno (test/bench/supervisors.ts).',
    '[supervisord]',
    'logfile = %(here)s/supervisord.log',
    'pidfile = %(here)s/supervisord.pid',
    'childlogdir = %(here)s',
    'nodaemon = true',
    // As root supervisord logs a CRIT line unless told it is meant (a non-root user: no user= at all).
    ...(process.getuid?.() === 0 ? ['user = root'] : []),
    '',
    '[unix_http_server]',
    'file = %(here)s/supervisor.sock',
    '',
    '[supervisorctl]',
    'serverurl = unix://%(here)s/supervisor.sock',
    '',
    '[rpcinterface:supervisor]',
    'supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface',
    '',
    ...web,
    '',
    '[program:worker]',
    `command = sleep ${l.workerArg}`,
    'numprocs = 4',
    'process_name = %(program_name)s_%(process_num)d',
    '',
    ...(l.logger
      ? [
          '[program:logger]',
          `command = ${process.execPath} ${LOGGER}`,
          `environment = LINES="${LINES}"`,
          'stdout_logfile = %(here)s/logger.log',
          'stdout_logfile_maxbytes = 64KB',
          'stdout_logfile_backups = 200',
          '',
        ]
      : []),
    ...(l.extra ? ['[program:extra]', 'command = sleep 100003', ''] : []),
  ].join('\n');
}

// ---- the supervisors -----------------------------------------------------------------

interface ProcInfo {
  name: string;
  state: string;
  pid: number | null;
}

interface Running {
  proc: ChildProcess;
  /** The supervisor process (not a wrapper). */
  pid: number;
  output: () => string;
}

interface Runner {
  name: string;
  /** Whether it can run here (else the reason). */
  available(): Promise<string | null>;
  start(dir: string, conf: string): Running;
  /** Every process as the supervisor reports it (in-process, cheap: polled every 20 ms). */
  processes(dir: string, conf: string): Promise<ProcInfo[] | null>;
  /** Its command-line client. */
  cli(dir: string, conf: string, args: string[]): Promise<{ out: string; ms: number; code: number }>;
  stop(r: Running, dir: string, conf: string): Promise<void>;
}

/** supervisord's XML-RPC over its unix socket: supervisor.getAllProcessInfo. */
async function supervisordInfo(sock: string): Promise<ProcInfo[] | null> {
  const body = '<?xml version="1.0"?><methodCall><methodName>supervisor.getAllProcessInfo</methodName><params></params></methodCall>';
  const xml = await new Promise<string | null>((resolve) => {
    const req = http.request({ socketPath: sock, path: '/RPC2', method: 'POST', headers: { 'content-type': 'text/xml', 'content-length': body.length } }, (res) => {
      let s = '';
      res.on('data', (d) => (s += d));
      res.on('end', () => resolve(s));
      res.on('error', () => resolve(null));
    });
    req.on('error', () => resolve(null));
    req.end(body);
  });
  if (xml === null || !xml.includes('<methodResponse>')) return null;
  const structs = xml.split('<struct>').slice(1);
  const field = (s: string, k: string) => new RegExp(`<name>${k}</name>\\s*<value><(?:string|int)>([^<]*)</`).exec(s)?.[1] ?? '';
  return structs.map((s) => ({ name: `${field(s, 'group')}:${field(s, 'name')}`, state: field(s, 'statename'), pid: Number(field(s, 'pid')) || null }));
}

/** einhyrningsins-dyno's `status` over its control socket: `name  STATE  pid N, ...` per process. */
async function dynoInfo(sock: string): Promise<ProcInfo[] | null> {
  try {
    const [r] = await ctl(sock, 'status', [], { timeoutMs: 5000 });
    if (!r || r.error) return null;
    return r.message
      .trim()
      .split('\n')
      .map((l) => {
        const [name = '', state = ''] = l.split(/\s+/);
        return { name, state, pid: Number(/pid (\d+)/.exec(l)?.[1]) || null };
      });
  } catch {
    return null;
  }
}

const supervisord: Runner = {
  name: 'supervisord 4.2.5',
  async available() {
    const r = await run('supervisord', ['--version']);
    return r.code === 0 ? null : 'supervisord is not installed (Debian: apt-get install supervisor)';
  },
  start(dir, conf) {
    const proc = spawn('supervisord', ['-c', conf], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout!.on('data', (d) => (out += d));
    proc.stderr!.on('data', (d) => (out += d));
    return { proc, pid: proc.pid as number, output: () => out + safeRead(join(dir, 'supervisord.log')) };
  },
  processes: (dir) => supervisordInfo(join(dir, 'supervisor.sock')),
  cli: (_dir, conf, args) => run('supervisorctl', ['-c', conf, ...args]),
  async stop(r) {
    await stopProc(r.proc);
  },
};

const dyno: Runner = {
  name: 'einhyrningsins-dyno',
  async available() {
    return null;
  },
  start(dir, conf) {
    const proc = spawn(process.execPath, [DYNO, 'start', '--config', conf, '-d', join(dir, 'dyno.sock')], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout!.on('data', (d) => (out += d));
    proc.stderr!.on('data', (d) => (out += d));
    return { proc, pid: proc.pid as number, output: () => out };
  },
  processes: (dir) => dynoInfo(join(dir, 'dyno.sock')),
  cli: (dir, _conf, args) => run(process.execPath, [CTL, '-d', join(dir, 'dyno.sock'), ...args]),
  async stop(r) {
    await stopProc(r.proc);
  },
};

/** The supervisors compared, one column each (the minisv helper adds its runner here). */
const RUNNERS: Runner[] = [dyno, supervisord].filter((r) => !process.env.BENCH_ONLY || r.name.startsWith(process.env.BENCH_ONLY));

function safeRead(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

async function stopProc(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 20_000);
  await gone;
  clearTimeout(t);
}

const allRunning = (ps: ProcInfo[] | null, n: number) => (ps && ps.length === n && ps.every((p) => p.state === 'RUNNING') ? ps : null);

// ---- the client loop -------------------------------------------------------------------

interface Traffic {
  ok: number;
  failed: number;
  errors: Map<string, number>;
  /** The longest time (ms) between two successful responses while it ran. */
  longestGapMs: number;
  maxLatencyMs: number;
}

/** CLIENTS loops of fresh-connection GETs until stopped; a failure waits 10 ms (a client's retry), so failures count time without service. */
function traffic(port: number): { t: Traffic; stop: () => Promise<Traffic> } {
  const t: Traffic = { ok: 0, failed: 0, errors: new Map(), longestGapMs: 0, maxLatencyMs: 0 };
  let lastOk = performance.now();
  let running = true;
  const one = () =>
    new Promise<void>((resolve) => {
      const t0 = performance.now();
      const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 5000, headers: { connection: 'close' } }, (res) => {
        res.resume();
        res.on('end', () => {
          const now = performance.now();
          if (res.statusCode === 200) {
            t.ok += 1;
            t.longestGapMs = Math.max(t.longestGapMs, now - lastOk);
            lastOk = now;
            t.maxLatencyMs = Math.max(t.maxLatencyMs, now - t0);
          } else fail(`HTTP ${res.statusCode}`);
          resolve();
        });
        res.on('error', (e) => (fail(e.message), resolve()));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e) => {
        fail((e as NodeJS.ErrnoException).code ?? e.message);
        setTimeout(resolve, 10);
      });
    });
  const fail = (what: string) => {
    t.failed += 1;
    t.errors.set(what, (t.errors.get(what) ?? 0) + 1);
  };
  const loops = Array.from({ length: CLIENTS }, async () => {
    while (running) await one();
  });
  return {
    t,
    stop: async () => {
      running = false;
      await Promise.all(loops);
      t.longestGapMs = Math.max(t.longestGapMs, performance.now() - lastOk);
      return t;
    },
  };
}

// ---- the phases ----------------------------------------------------------------------

interface Result {
  startupMs: { allRunning: number; webAnswers: number };
  rssKb: { started: number; afterRestarts: number };
  status: { text: string; ms: number };
  restart: Array<{ variant: string; ok: number; failed: number; errors: Record<string, number>; longestGapMs: number; maxLatencyMs: number; cliMs: number; webPidsChanged: boolean }>;
  logs: { written: number; intact: number; missing: number; split: number; files: number };
  update: { reread: string; update: string; untouchedWeb: boolean; workersReplaced: boolean; extraRunning: boolean; loggerGone: boolean; ms: number };
}

async function webAnswers(port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 1000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
}

/**
 * The logger's lines in logger.log and its backups, read oldest first (logger.log.N ..
 * .1, then logger.log): intact, cut in two by a rotation (a file that ends mid-line: the
 * line goes on at the start of the next one), and lost (not in the files at all).
 */
function countLogLines(dir: string): Result['logs'] {
  const files = readdirSync(dir)
    .map((n) => /^logger\.log(?:\.(\d+))?$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .sort((a, b) => Number(b[1] ?? 0) - Number(a[1] ?? 0))
    .map((m) => m[0]);
  const texts = files.map((f) => readFileSync(join(dir, f), 'utf8'));
  const split = texts.slice(0, -1).filter((t) => t !== '' && !t.endsWith('\n')).length;
  const seen = new Set<number>();
  for (const line of texts.join('').split('\n')) {
    const m = /^line (\d{6}) x{87}$/.exec(line);
    if (m) seen.add(Number(m[1]));
  }
  return { written: LINES, intact: seen.size - split, split, missing: LINES - seen.size, files: files.length };
}

async function onePass(runner: Runner, web: 'program' | 'fcgi-program', webProcs: number, full: boolean): Promise<Partial<Result> & { restart: Result['restart'] }> {
  const dir = mkdtempSync(join(tmpdir(), 'ein-bench-sv-'));
  const port = await freePort();
  const conf = join(dir, 'app.conf');
  const layout: Layout = { dir, port, web, webProcs, workerArg: 100001, extra: false, logger: full };
  writeFileSync(conf, config(layout));
  const nProcs = () => webProcs + 4 + (layout.logger ? 1 : 0) + (layout.extra ? 1 : 0);
  const t0 = performance.now();
  const r = runner.start(dir, conf);
  const out: Partial<Result> & { restart: Result['restart'] } = { restart: [] };
  try {
    let answered = 0;
    const ps = await until(`${runner.name}: every program RUNNING`, async () => {
      if (!answered && (await webAnswers(port))) answered = performance.now() - t0;
      return allRunning(await runner.processes(dir, conf), nProcs());
    });
    const allUp = performance.now() - t0;
    if (!answered) answered = (await until('web answers', async () => ((await webAnswers(port)) ? performance.now() - t0 : null))) as number;
    if (full) {
      out.startupMs = { allRunning: allUp, webAnswers: answered };
      await sleep(2000);
      const started = statusKb(r.pid, 'VmRSS') ?? 0;
      const st = await runner.cli(dir, conf, ['status']);
      out.status = { text: st.out, ms: st.ms };
      // The logger has written everything (or stopped at a full pipe); the files hold what they hold.
      await until('the logger done', () => countLogLines(dir).intact + countLogLines(dir).split >= LINES || null, 60_000, 200).catch(() => null);
      await sleep(500);
      out.logs = countLogLines(dir);
      out.rssKb = { started, afterRestarts: 0 };
    }
    for (let i = 0; i < RUNS; i++) {
      const before = (await runner.processes(dir, conf))?.filter((p) => p.name.includes('web')).map((p) => p.pid);
      const load = traffic(port);
      await sleep(1000);
      const cli = await runner.cli(dir, conf, ['restart', 'web:*']);
      await until('web RUNNING again', async () => allRunning(await runner.processes(dir, conf), nProcs()));
      await sleep(1000);
      const t = await load.stop();
      const after = (await runner.processes(dir, conf))?.filter((p) => p.name.includes('web')).map((p) => p.pid);
      out.restart.push({
        variant: `${web} x${webProcs}`,
        ok: t.ok,
        failed: t.failed,
        errors: Object.fromEntries(t.errors),
        longestGapMs: t.longestGapMs,
        maxLatencyMs: t.maxLatencyMs,
        cliMs: cli.ms,
        webPidsChanged: JSON.stringify(before) !== JSON.stringify(after),
      });
      if (cli.code !== 0) process.stderr.write(`${runner.name}: restart web:* exited ${cli.code}: ${cli.out}\n`);
    }
    if (full) {
      (out.rssKb as Result['rssKb']).afterRestarts = statusKb(r.pid, 'VmRSS') ?? 0;
      // reread/update: worker's command changed, extra added, logger removed; web untouched.
      const before = (await runner.processes(dir, conf)) ?? [];
      Object.assign(layout, { workerArg: 100002, extra: true, logger: false });
      writeFileSync(conf, config(layout));
      const reread = await runner.cli(dir, conf, ['reread']);
      const t1 = performance.now();
      const update = await runner.cli(dir, conf, ['update']);
      const after = await until('updated', async () => {
        const ps = await runner.processes(dir, conf);
        return ps && ps.some((p) => p.name.includes('extra') && p.state === 'RUNNING') && !ps.some((p) => p.name.includes('logger')) && allRunning(ps, nProcs()) ? ps : null;
      });
      const ms = performance.now() - t1;
      const pidsOf = (ps: ProcInfo[], w: string) => ps.filter((p) => p.name.includes(w)).map((p) => p.pid).join();
      out.update = {
        reread: reread.out.trim(),
        update: update.out.trim(),
        untouchedWeb: pidsOf(before, 'web') === pidsOf(after, 'web'),
        workersReplaced: before.filter((p) => p.name.includes('worker')).every((p) => !pidsOf(after, 'worker').split(',').includes(String(p.pid))),
        extraRunning: true,
        loggerGone: true,
        ms,
      };
    }
    void ps;
  } catch (err) {
    process.stderr.write(`${runner.name}: ${(err as Error).message}\n--- its output:\n${r.output().slice(-3000)}\n`);
    throw err;
  } finally {
    await runner.stop(r, dir, conf);
    if (process.env.BENCH_KEEP) process.stderr.write(`kept ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

function cell(v: number, unit = ''): string {
  return `${Math.round(v).toLocaleString('en-US')}${unit}`;
}

async function main(): Promise<void> {
  const results: Record<string, { full: Partial<Result>; restarts: Result['restart'] } | { skipped: string }> = {};
  for (const runner of RUNNERS) {
    const why = await runner.available();
    if (why) {
      results[runner.name] = { skipped: why };
      continue;
    }
    process.stderr.write(`${runner.name}: start-up, status, logs, restarts (plain), update...\n`);
    const full = await onePass(runner, 'program', 1, true);
    // The socket program with 2 processes: the driver's program with socket= (rolling), supervisord's fcgi-program (stop, then start).
    process.stderr.write(`${runner.name}: restarts of a 2-process socket program...\n`);
    const two = await onePass(runner, runner === supervisord ? 'fcgi-program' : 'program', 2, false);
    results[runner.name] = { full, restarts: [...full.restart, ...two.restart] };
  }
  const names = RUNNERS.map((r) => r.name);
  const rows: Array<[string, (x: { full: Partial<Result>; restarts: Result['restart'] }) => string]> = [
    ['start-up: every program RUNNING (ms)', (x) => cell(x.full.startupMs!.allRunning)],
    ['start-up: the web program answers (ms)', (x) => cell(x.full.startupMs!.webAnswers)],
    ['`status` client, wall time (ms)', (x) => cell(x.full.status!.ms)],
    ...(['program x1', 'x2'] as const).map(
      (v): [string, (x: { full: Partial<Result>; restarts: Result['restart'] }) => string] => [
        `\`restart web:*\` under load, ${v === 'x2' ? '2 processes on one socket' : '1 process'}: failed requests of all (${RUNS} restarts)`,
        (x) => {
          const rs = x.restarts.filter((r) => r.variant.endsWith(v === 'x2' ? 'x2' : 'x1'));
          return `${cell(rs.reduce((a, r) => a + r.failed, 0))} of ${cell(rs.reduce((a, r) => a + r.ok + r.failed, 0))} (${rs[0]?.variant})`;
        },
      ],
    ),
    ['  longest time without a response, each restart (ms)', (x) => x.restarts.map((r) => cell(r.longestGapMs)).join(' / ')],
    ['  the restart command, median (ms)', (x) => cell(median(x.restarts.map((r) => r.cliMs)))],
    ['log rotation (64KB, 200 backups; 4 KiB block writes): lines intact / cut in two / missing', (x) => `${cell(x.full.logs!.intact)} / ${cell(x.full.logs!.split)} / ${cell(x.full.logs!.missing)} of ${cell(LINES)} (${x.full.logs!.files} files)`],
    ['`update` (1 changed, 1 added, 1 removed): until done (ms)', (x) => cell(x.full.update!.ms)],
    ['  the unchanged web program untouched', (x) => (x.full.update!.untouchedWeb ? 'yes' : 'no')],
    ['supervisor RSS after start (MB)', (x) => (x.full.rssKb!.started / 1024).toFixed(1)],
    ['supervisor RSS after the restarts (MB)', (x) => (x.full.rssKb!.afterRestarts / 1024).toFixed(1)],
  ];
  const lines = [`| | ${names.join(' | ')} |`, `|---|${names.map(() => '---').join('|')}|`];
  for (const [label, f] of rows) {
    lines.push(`| ${label} | ${names.map((n) => { const x = results[n]!; return 'skipped' in x ? '-' : f(x); }).join(' | ')} |`);
  }
  console.log(lines.join('\n'));
  for (const n of names) {
    const x = results[n]!;
    if ('skipped' in x) {
      console.log(`\n${n}: skipped: ${x.skipped}`);
      continue;
    }
    console.log(`\n### ${n}: status\n\n\`\`\`\n${x.full.status!.text.trimEnd()}\n\`\`\`\n\n### ${n}: reread, update\n\n\`\`\`\n${x.full.update!.reread}\n---\n${x.full.update!.update}\n\`\`\``);
    console.log(`\nrestarts: ${JSON.stringify(x.restarts)}`);
  }
  if (process.env.BENCH_OUT) writeFileSync(process.env.BENCH_OUT, JSON.stringify(results, null, 2));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
