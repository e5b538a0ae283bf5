// What can go wrong while the lifecycle changes a model, in its own words.
// The job layer carries these codes on failed jobs unchanged.

/** Stable codes a failed or cancelled load or unload can carry; documented in the README. */
export const LIFECYCLE_ERROR_CODES = {
  LOAD_FAILED: "ONNX Runtime could not create a session from the file",
  LOAD_TIMEOUT: "the load took longer than MODELD_LOAD_TIMEOUT_MS; its worker releases the memory once ONNX Runtime returns",
  MODEL_FILE_MISSING: "the model file is gone or unreadable",
  CHECKSUM_MISMATCH: "the file no longer matches the sha256 recorded at registration",
  UNSAFE_EXTERNAL_DATA: "the model references external data outside its directory",
  PROVIDER_UNAVAILABLE: "a requested execution provider is not available and CPU fallback is off",
  WARMUP_FAILED: "a warmup run failed, so the version never served",
  INSUFFICIENT_MEMORY: "the load does not fit in MODELD_MEMORY_BUDGET (or the host's available memory) even after evicting idle models; the message says what holds the rest",
  MODEL_NOT_FOUND: "the model was deleted before the job ran",
  MODEL_VERSION_NOT_FOUND: "the version was not registered when the job ran",
  CANCELLED: "an admin cancelled the job, or a force unload ended it",
  WORKER_CRASHED: "the session's worker died",
  STORAGE_FULL: "the disk that holds modeld's database filled up while the job ran; the model's state says what the runtime was left with",
} as const;
export type LifecycleErrorCode = keyof typeof LIFECYCLE_ERROR_CODES;

export class LifecycleError extends Error {
  constructor(
    readonly code: LifecycleErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** A transition the table does not allow: a bug in modeld, never a user error. */
export class IllegalTransition extends Error {}
