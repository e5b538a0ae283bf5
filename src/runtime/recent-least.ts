/** The least of the last few durations noted, and a way to note one. */
export interface RecentLeast {
  note(ms: number): void;
  least(): number;
}

/**
 * The threads' spin and wait decisions each learn from a handful of recent
 * durations, and trust the least: one sample made long by a busy host must not
 * change the decision, and a change that lasts takes over as the old samples are
 * overwritten. Until `size` are noted, the `initial` fill counts as samples.
 */
export function recentLeast(size: number, initial: number): RecentLeast {
  const values: number[] = new Array(size).fill(initial);
  let at = 0;
  return {
    note: (ms) => void (values[at++ % size] = ms),
    least: () => Math.min(...values),
  };
}
