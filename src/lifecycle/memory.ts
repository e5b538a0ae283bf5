// Memory as the lifecycle accounts for it: what a version costs (measured, or
// estimated until then), what the budget allows, and which idle versions give
// way when a load needs room.
import { readFileSync } from "node:fs";
import { freemem, totalmem } from "node:os";
import { cgroupMemory } from "../platform/cgroup-memory";
import { formatBytes } from "../units";

/**
 * Before a file's first load its cost is its size times this. Measured here
 * on CPU for weight-dominated models of 50 to 400 MB: 0.80–1.04× the file
 * (allocator reuse makes some loads look cheaper). ONNX Runtime's one-time
 * process setup (~26 MiB) is paid by the spare thread before any measurement.
 */
export const ESTIMATE_FACTOR = 1.2;

export function estimateFromSize(sizeBytes: number): number {
  return Math.ceil(sizeBytes * ESTIMATE_FACTOR);
}

/**
 * What creating a session takes at its peak: what it keeps, and the parsed file
 * ONNX Runtime holds while it copies the weights out of it. Measured in a cgroup
 * (memory.max_usage_in_bytes over the load): 2.1× the file for weight-dominated
 * models of 190 and 400 MB, of which ~1.0× is kept.
 */
export function creationPeakBytes(need: number, fileBytes: number): number {
  return need + estimateFromSize(fileBytes);
}

/** The process's resident set, the measure of a session's cost on CPU. */
export const residentBytes = (): number => process.memoryUsage.rss();

/** MemAvailable from /proc/meminfo: what the host can give without swapping; free memory elsewhere. */
function hostAvailableBytes(): number {
  try {
    const m = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync("/proc/meminfo", "utf8"));
    if (m) return Number(m[1]) * 1024;
  } catch {}
  return freemem();
}

/**
 * What this process may use, from one reading of the host and its cgroup:
 * `limit`, the host's RAM or the cgroup's memory limit when lower (what a budget
 * in % is a share of); `available`, what a load may still take before the kernel
 * refuses it, and where that limit is (for messages).
 */
export function memoryNow(): { limit: { bytes: number; cgroup?: string }; available: { bytes: number; where: string } } {
  const host = { total: totalmem(), available: hostAvailableBytes() };
  const cgroup = cgroupMemory();
  return {
    limit: cgroup && cgroup.limitBytes < host.total ? { bytes: cgroup.limitBytes, cgroup: cgroup.path } : { bytes: host.total },
    available:
      cgroup && cgroup.roomBytes < host.available
        ? { bytes: Math.max(0, cgroup.roomBytes), where: `under the ${formatBytes(cgroup.limitBytes)} memory limit of cgroup ${cgroup.path}` }
        : { bytes: host.available, where: "on the host" },
  };
}

/**
 * One holder at a time. Admission and measurement share it: two loads must not
 * both decide that they fit, and one load's allocations must not blur
 * another's measurement.
 */
export function createGate() {
  let tail = Promise.resolve();
  return {
    async acquire(): Promise<() => void> {
      let release!: () => void;
      const previous = tail;
      tail = new Promise<void>((r) => (release = r));
      await previous;
      return release;
    },
  };
}

export interface Holder {
  modelId: string;
  version: string;
  bytes: number;
  /** monotonicMs(): only its order matters here. */
  lastUsedAt: number;
  /** Why it cannot give way, or null when it is idle and evictable. */
  keeps: string | null;
}

export type Admission = { fits: true; evict: Holder[] } | { fits: false; message: string };

/**
 * Which idle versions to evict, least recently used first, so that `need`
 * bytes fit under `budget`; or why it cannot fit. Holders that must stay (in
 * use, pinned, being replaced) say so in the message.
 */
export function admit(need: number, budget: number, holders: Holder[], what: string): Admission {
  const used = holders.reduce((n, h) => n + h.bytes, 0);
  let free = budget - used;
  if (need <= free) return { fits: true, evict: [] };
  const evict: Holder[] = [];
  for (const h of holders.filter((h) => h.keeps === null).sort((a, b) => a.lastUsedAt - b.lastUsedAt)) {
    if (need <= free) break;
    evict.push(h);
    free += h.bytes;
  }
  if (need <= free) return { fits: true, evict };
  const idle = evict.reduce((n, h) => n + h.bytes, 0);
  const kept = holders.filter((h) => h.keeps !== null).map((h) => `${h.modelId}@${h.version} ${formatBytes(h.bytes)} (${h.keeps})`);
  return {
    fits: false,
    message:
      `${what} needs ${formatBytes(need)} (${need} bytes); ${formatBytes(Math.max(0, budget - used))} (${Math.max(0, budget - used)} bytes) of the ` +
      `${formatBytes(budget)} budget is free and idle models hold ${formatBytes(idle)} more; held by: ${kept.join(", ") || "nothing that can give way"}`,
  };
}
