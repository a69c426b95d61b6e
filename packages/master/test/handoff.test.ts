import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as native from 'native-reuseport';
import { HANDOFF_NAMES, handOffEnv, handOffs } from '../src/handoff/index.js';
import { Logger } from '../src/log.js';

const log = new Logger(3, process.pid, () => undefined);

test('hand-offs by name: einhorn (its variables are always set) and port; an unknown name is one line', () => {
  assert.deepEqual(HANDOFF_NAMES, ['einhorn', 'port']);
  assert.throws(() => handOffs(['einhorn', 'systemd-ish'], { log, verbose: false }), /^Error: unknown hand-off 'systemd-ish' \(known: einhorn, port\)$/);
  const [einhorn] = handOffs(['einhorn'], { log, verbose: false });
  assert.deepEqual(einhorn!.env({ listeners: [{ fd: 5, family: 4, port: 8080 }], base: {} }), {});
});

test("port: PORT is the first TCP socket's port, the bind shim is preloaded before the app's own LD_PRELOAD, for that socket's fd", () => {
  native.ensureNative();
  const list = handOffs(['einhorn', 'port'], { log, verbose: true });
  const env = handOffEnv(list, {
    listeners: [
      { fd: 7, family: 'unix', port: 0 },
      { fd: 9, family: 6, port: 5000 },
    ],
    base: { LD_PRELOAD: '/usr/lib/libapp.so' },
  });
  assert.deepEqual(env, {
    PORT: '5000',
    LD_PRELOAD: `${native.bindShimPath} /usr/lib/libapp.so`,
    EINHYRNINGSINS_BIND_FDS: '4',
    EINHYRNINGSINS_BIND_VERBOSE: '1',
  });
  // No TCP socket: nothing to say.
  assert.deepEqual(handOffEnv(list, { listeners: [{ fd: 7, family: 'unix' }], base: {} }), {});
});
