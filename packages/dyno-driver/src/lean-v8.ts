/**
 * V8 settings for a driver that runs for months and spends little CPU in JavaScript, set
 * when `start` begins (node:v8 is loaded only then: --version and usage errors stay light).
 *
 * - No optimising compiler (`--max-opt=1`: the interpreter and Sparkplug's baseline code).
 *   TurboFan's first compilation brings its own code into memory: measured, the driver of
 *   the supervisor comparison's config (`npm run bench:supervisors`) was 53.8 MB after start
 *   with it (one function made hot by the CommonJS loader's path handling) and 50.1 without,
 *   and 63.3 / 57.3 MB after its logger's 20,000 lines, for the same CPU (251-344 ms with
 *   the flag, 263-275 without, three runs each); a config of 300 processes 73.3 -> 54.9 MB
 *   with no more CPU to start them. The price is in bursts of JavaScript work: restarting
 *   those 300 at once took 1.5-1.7 s of CPU instead of 1.0 (+50 %, the restart's wall time
 *   the same). Of the 3.7 MB at start, 3.4 MB are pages of node's own code, shared with
 *   every Node process on the machine; after that restart the saving was 10 MB (56 / 66).
 * - The young generation keeps its initial size (the memory keeper sets the same at the
 *   master's first burst of workers): output read in bursts grew it by ~1 MB that stayed.
 */
export async function leanV8(): Promise<void> {
  const v8 = await import('node:v8');
  v8.setFlagsFromString('--max-opt=1');
  v8.setFlagsFromString('--semi-space-growth-factor=1');
}
