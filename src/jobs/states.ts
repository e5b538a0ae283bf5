import { LIFECYCLE_ERROR_CODES } from "../lifecycle/errors";
import { LIFECYCLE_PHASES, type LifecycleOutcome } from "../lifecycle/phases";

export const JOB_STATES = ["pending", "running", "completed", "failed", "cancelled"] as const;
export type JobState = (typeof JOB_STATES)[number];
export const JOB_KINDS = ["load", "unload"] as const;
export type JobKind = (typeof JOB_KINDS)[number];
/** A job is `queued` until it is claimed; then it reports the lifecycle step it is in. */
export const JOB_PHASES = ["queued", ...LIFECYCLE_PHASES] as const;
export type JobPhase = (typeof JOB_PHASES)[number];
export type JobOutcome = LifecycleOutcome;
/** Why a job exists when no person asked for it; null for jobs people request. */
export type JobReason = { kind: "evicted"; for: string } | { kind: "idle" } | { kind: "on-demand" };
export const REASON_KINDS = ["evicted", "idle", "on-demand"] as const;

export const FINISHED_STATES: readonly JobState[] = ["completed", "failed", "cancelled"];
export const isFinished = (s: JobState) => FINISHED_STATES.includes(s);

/** Stable codes a failed or cancelled job can carry; documented in the README. */
export const JOB_ERROR_CODES = {
  ...LIFECYCLE_ERROR_CODES,
  INTERRUPTED: "modeld stopped while the job was running",
  INTERNAL: "a bug in modeld (for example an illegal lifecycle transition); the log has the details",
} as const;
export type JobErrorCode = keyof typeof JOB_ERROR_CODES;

export class JobError extends Error {
  constructor(
    readonly code: JobErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface Job {
  id: string;
  kind: JobKind;
  modelId: string;
  /** The version a load targets; null for unloads, which unload the whole model. */
  version: string | null;
  state: JobState;
  phase: JobPhase | null;
  /** When the job entered each phase, in order. */
  timeline: { phase: JobPhase; at: string }[];
  /** Null until the job completes. */
  outcome: JobOutcome | null;
  force: boolean;
  activate: boolean;
  /** A load that reads the version's file as it is now: see LoadRequest.reread. */
  reread: boolean;
  error: { code: string; message: string } | null;
  requestedBy: string;
  reason: JobReason | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}
