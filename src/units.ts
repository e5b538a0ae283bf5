// Byte sizes and durations as operators write them, parsed in one place for
// the environment and for model settings alike.
const BYTE_UNITS: Record<string, number> = { "": 1, B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 };
const BYTES_PATTERN = /^(\d+)(B|KiB|MiB|GiB|TiB)?$|^(\d+(?:\.\d+)?)%$/;

/** A memory budget: bytes, or a share of the memory the process may use, resolved when it is used. */
export type Budget = { bytes: number } | { percentOfHost: number };

export function parseBudget(text: string): Budget | undefined {
  const m = BYTES_PATTERN.exec(text.trim());
  if (!m) return undefined;
  if (m[3] !== undefined) {
    const pct = Number(m[3]);
    return pct > 0 && pct <= 100 ? { percentOfHost: pct } : undefined;
  }
  const bytes = Number(m[1]) * BYTE_UNITS[m[2] ?? ""]!;
  return Number.isSafeInteger(bytes) && bytes > 0 ? { bytes } : undefined;
}

/** `limitBytes`: the host's RAM, or the process's cgroup limit when lower. */
export function budgetBytes(b: Budget, limitBytes: number): number {
  return "bytes" in b ? b.bytes : Math.floor((limitBytes * b.percentOfHost) / 100);
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
/** `-1` (forever), `0` (at once), or a number with ms, s, m or h. */
export const KEEP_ALIVE_PATTERN = /^(-1|0|\d+(ms|s|m|h))$/;

/** Milliseconds; -1 means forever. */
export function parseKeepAlive(text: string): number {
  if (text === "-1") return -1;
  if (text === "0") return 0;
  const m = /^(\d+)(ms|s|m|h)$/.exec(text);
  if (!m) throw new Error(`not a duration: ${text}`);
  return Number(m[1]) * DURATION_UNITS[m[2]!]!;
}

const MiB = 1024 * 1024;
export const formatBytes = (n: number) => (n >= 1024 * MiB ? `${(n / 1024 / MiB).toFixed(2)} GiB` : `${(n / MiB).toFixed(1)} MiB`);
