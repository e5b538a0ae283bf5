// The one error type that crosses layers. Each code has one HTTP status, so a
// client can rely on the code alone.
export const ERROR_CODES = {
  VALIDATION_ERROR: { status: 400, description: "The request does not match the schema; `details` lists the issues." },
  MALFORMED_JSON: { status: 400, description: "The body is not valid JSON." },
  PATH_NOT_ALLOWED: { status: 400, description: "The model path is absolute outside the model dir, contains `..`, or a symlink escapes it." },
  MODEL_FILE_NOT_FOUND: { status: 400, description: "No readable file at the model path." },
  INVALID_TENSOR: { status: 400, description: "An inference input does not match the model: unknown or missing name, wrong datatype, shape or data length, too many elements." },
  INFERENCE_FAILED: { status: 400, description: "ONNX Runtime rejected the inputs while running the model." },
  MODEL_LOAD_FAILED: { status: 400, description: "The on-demand load this request waited for failed; the message is the load's error." },
  SHARED_MEMORY_DISABLED: { status: 400, description: "Shared memory regions from clients are off (MODELD_ALLOW_CLIENT_SHM)." },
  SHARED_MEMORY_INVALID: { status: 400, description: "A shared memory region could not be registered (no such object, past its end, a name already registered) or used (not registered, a tensor past the region's end, an output larger than the room given)." },
  JOB_FAILED: { status: 400, description: "The job a Triton repository call waited for failed or was cancelled; the message is its error." },
  UNAUTHORIZED: { status: 401, description: "No token, or a malformed, expired or badly signed one." },
  FORBIDDEN: { status: 403, description: "The token is valid but lacks the needed role." },
  NOT_FOUND: { status: 404, description: "No such route." },
  MODEL_NOT_FOUND: { status: 404, description: "No model with that id." },
  MODEL_VERSION_NOT_FOUND: { status: 404, description: "The model has no version with that number." },
  JOB_NOT_FOUND: { status: 404, description: "No job with that id." },
  MODEL_EXISTS: { status: 409, description: "A model with that id is already registered." },
  MODEL_VERSION_EXISTS: { status: 409, description: "The model already has a version with that number." },
  MODEL_BUSY: { status: 409, description: "The model is loaded or has unfinished jobs." },
  MODEL_NOT_LOADED: { status: 409, description: "Nothing to unload: the model is not loaded and no load is queued." },
  NO_ACTIVE_MODEL: { status: 409, description: "No model is active, so there is nothing to unload or predict with." },
  JOB_FINISHED: { status: 409, description: "The job has already finished and cannot be cancelled." },
  PAYLOAD_TOO_LARGE: { status: 413, description: "The body exceeds MODELD_MAX_BODY_BYTES." },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, description: "The body's Content-Type is not JSON where JSON is expected, or its Content-Encoding is not gzip, deflate or identity." },
  IDEMPOTENCY_KEY_REUSED: { status: 422, description: "The Idempotency-Key was used before with a different request." },
  TOO_MANY_JOBS: { status: 429, description: "Too many unfinished jobs; retry after the Retry-After seconds." },
  INTERNAL: { status: 500, description: "An unexpected error; the log has the details under the same requestId." },
  MODEL_UNAVAILABLE: { status: 503, description: "The model is unloading, was force-unloaded or its worker ended while the request waited, or is still loading on demand; retry after Retry-After." },
  QUEUE_FULL: { status: 503, description: "The model's request queue (MODELD_MAX_QUEUE_PER_MODEL) is full; retry after Retry-After." },
  AUTH_UNAVAILABLE: { status: 503, description: "The key set that verifies tokens (MODELD_JWKS_URL) could not be fetched, so the token could not be checked; the message names the URL and the reason. Retry after Retry-After: the token may well be good." },
  TOO_MANY_STREAMS: { status: 503, description: "Too many open event streams; retry after Retry-After." },
  MODEL_DIR_UNREADABLE: { status: 503, description: "The model dir (MODELD_MODEL_DIR) cannot be read, so a scan could not tell what is in it; the message names it and the system's error. What was registered stays registered." },
  STORAGE_FAILED: { status: 503, description: "The disk that holds modeld's database failed (an I/O error, or it went read-only), or the file is damaged, and the read or write was not made; the message names the database and SQLite's error. Loaded models serve on; check the disk, then restart modeld." },
  STORAGE_FULL: { status: 507, description: "The disk that holds modeld's database is full, and the write that met it was rolled back whole (or the job a Triton repository call or an on-demand request waited for met it); free space in the data directory and retry. Inference and reads go on." },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class AppError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.status = ERROR_CODES[code].status;
  }
}

/**
 * The Open Inference Protocol answers 400 for a model that is not ready;
 * /api/v1 uses 409 for the same state.
 */
export function protocolStatus(err: AppError): number {
  return err.code === "MODEL_NOT_LOADED" || err.code === "NO_ACTIVE_MODEL" ? 400 : err.status;
}

/** The database's disk is full: the operator's to fix, and writes may succeed again later. */
export const isStorageFull = (err: unknown): err is AppError => err instanceof AppError && err.code === "STORAGE_FULL";
/** The database's disk is full or failed: either way the operator's to fix, not a bug. */
export const isStorageError = (err: unknown): err is AppError => err instanceof AppError && (err.code === "STORAGE_FULL" || err.code === "STORAGE_FAILED");
