export const JOB_STATES = ["pending", "running", "completed", "failed", "cancelled"] as const;
export type JobState = (typeof JOB_STATES)[number];
export const JOB_KINDS = ["load", "unload"] as const;
export type JobKind = (typeof JOB_KINDS)[number];

export const FINISHED_STATES: readonly JobState[] = ["completed", "failed", "cancelled"];
export const isFinished = (s: JobState) => FINISHED_STATES.includes(s);

/** Stable codes a failed or cancelled job can carry; documented in the README. */
export const JOB_ERROR_CODES = {
  LOAD_FAILED: "ONNX Runtime could not create a session from the file",
  LOAD_TIMEOUT: "the load took longer than MODELD_LOAD_TIMEOUT_MS; its worker releases the memory once ONNX Runtime returns",
  MODEL_FILE_MISSING: "the model file is gone or unreadable",
  CHECKSUM_MISMATCH: "the file no longer matches the sha256 recorded at registration",
  UNSAFE_EXTERNAL_DATA: "the model references external data outside its directory",
  PROVIDER_UNAVAILABLE: "a requested execution provider is not available and CPU fallback is off",
  MODEL_NOT_FOUND: "the model was deleted before the job ran",
  INTERRUPTED: "modeld stopped while the job was running",
  CANCELLED: "an admin cancelled the job",
  WORKER_CRASHED: "the model's worker died",
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
  state: JobState;
  phase: string | null;
  force: boolean;
  activate: boolean;
  error: { code: string; message: string } | null;
  requestedBy: string;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}
