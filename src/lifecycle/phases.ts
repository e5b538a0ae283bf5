/** The steps a load, swap or unload goes through, in order; a job reports the one it is in. */
export const LIFECYCLE_PHASES = ["verifying", "creating_session", "warming", "switching", "draining", "releasing"] as const;
export type LifecyclePhase = (typeof LIFECYCLE_PHASES)[number];

/** A finished load or unload: `summary` always, more fields where they apply. */
export interface LifecycleOutcome {
  summary: string;
  /** An unload: the process's resident memory before the release minus after the thread ended, at least 0. */
  reclaimedBytes?: number;
  /** A load: the measured resident cost of the new session. */
  memoryBytes?: number;
  /** A load of a model with batching settings: whether its session really batches (every input and output needs a dynamic first dimension). */
  batching?: boolean;
  /** The version now serving (loads). */
  version?: string;
  /** The version a swap replaced, and how its session ended. */
  replaced?: { version: string; release: "released" | "forced" };
}

/** An eviction, recorded as an unload job of its own while the load that needs the room runs it. */
export interface Eviction {
  ctl: LifecycleControl;
  finish(outcome: LifecycleOutcome): void;
  fail(err: unknown): void;
}

/** What the lifecycle needs from the job that drives it. */
export interface LifecycleControl {
  /** Starts recording the eviction of `modelId` for this load; undefined when another job of that model runs. */
  evict?(modelId: string, forWhat: string): Eviction | undefined;
  phase(p: LifecyclePhase): void;
  /** True once the job was cancelled (or force-ended); checked between steps. */
  cancelled(): boolean;
  /** True when the job asks (or was escalated) to skip draining. */
  forced(): boolean;
}
