// Durations and deadlines are measured on the monotonic clock. The wall clock
// steps when NTP corrects it or a VM resumes: measured on it, a step of an hour
// forward unloaded every model with a shorter keepAlive at once, and a step back
// would have held a long-poll for that hour.

/** Milliseconds on a clock that never steps; only differences between readings mean anything. */
export const monotonicMs = (): number => performance.now();

/** Converts monotonic readings to wall-clock ms since the epoch, in the wall clock's frame as of this call. */
export function toWallClock(): (monotonic: number) => number {
  const offset = Date.now() - performance.now();
  return (monotonic) => monotonic + offset;
}
