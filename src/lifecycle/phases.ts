/** The steps a load, swap or unload goes through, in order; a job reports the one it is in. */
export const LIFECYCLE_PHASES = ["verifying", "creating_session", "warming", "switching", "draining", "releasing"] as const;
export type LifecyclePhase = (typeof LIFECYCLE_PHASES)[number];

/** A finished load or unload: `summary` always, more fields where they apply. */
export interface LifecycleOutcome {
  summary: string;
  /** The version now serving (loads). */
  version?: string;
  /** The version a swap replaced, and how its session ended. */
  replaced?: { version: string; release: "released" | "forced" };
}

/** What the lifecycle needs from the job that drives it. */
export interface LifecycleControl {
  phase(p: LifecyclePhase): void;
  /** True once the job was cancelled (or force-ended); checked between steps. */
  cancelled(): boolean;
  /** True when the job asks (or was escalated) to skip draining. */
  forced(): boolean;
}
