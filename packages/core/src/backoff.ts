/**
 * Delay before the next start after `streak` consecutive failed starts:
 * 0 when nothing failed, then base, 2*base, 4*base, ... capped at `cap`.
 */
export function backoffDelay(streak: number, base: number, cap: number): number {
  if (streak <= 0) return 0;
  const d = base * 2 ** Math.min(streak - 1, 30);
  return Math.min(d, cap);
}
