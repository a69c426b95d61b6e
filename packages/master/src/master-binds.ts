/** The master's listening sockets: systemd's first (EINHORN_FD_0, ...), then every -b in order. */
import { lstatSync } from 'node:fs';
import * as native from 'native-reuseport';
import { parseBindSpec, resolveBind } from './bind-spec.js';
import type { Cleanup } from './cleanup.js';
import { listenOn } from './listen.js';
import type { Logger } from './log.js';
import type { Options } from './options.js';
import type { BoundSocket } from './reload.js';
import { listenFds } from './systemd.js';
import { isUnixBind, listenUnixBind, parseUnixBind } from './unix-bind.js';

export async function bindAll(opts: Options, cwd: string, log: Logger, cleanup: Cleanup): Promise<BoundSocket[]> {
  const sockets: BoundSocket[] = [];
  for (const a of listenFds(process.env, log)) {
    const name = native.getsockname(a.fd);
    cleanup.add(() => native.close(a.fd));
    sockets.push({ fd: a.fd, family: name.family, text: `systemd:${a.name}`, address: name.address, port: name.port, flags: [], unixFile: null });
    log.debug(`Took over fd ${a.fd} (${a.name}) from systemd`);
  }
  const only = opts.ipv4Only ? 4 : opts.ipv6Only ? 6 : null;
  const specs = opts.binds.map((b) => (isUnixBind(b) ? parseUnixBind(b, cwd) : parseBindSpec(b)));
  for (const spec of specs) {
    if ('path' in spec) {
      const { fd, release } = await listenUnixBind(spec, opts.backlog, (m) => log.warn(m));
      cleanup.add(release);
      const ino = lstatSync(spec.path).ino;
      sockets.push({ fd, family: 'unix', text: spec.text, address: spec.path, port: 0, flags: spec.nonBlock ? ['n'] : [], unixFile: { path: spec.path, ino } });
      continue;
    }
    const bind = await resolveBind(spec, only);
    const fd = listenOn(bind, { backlog: opts.backlog, v6Only: opts.ipv6Only ? true : null, what: `-b ${spec.text}` });
    cleanup.add(() => native.close(fd));
    sockets.push({
      fd,
      family: bind.family,
      text: bind.text,
      address: bind.address,
      port: native.getsockname(fd).port,
      flags: [bind.reuseAddr ? 'r' : '', bind.nonBlock ? 'n' : '', bind.reusePort ? 'p' : ''].filter(Boolean),
      unixFile: null,
    });
  }
  return sockets;
}
