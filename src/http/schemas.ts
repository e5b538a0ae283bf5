// The zod schemas behind validation, handler types and the OpenAPI document.
import { z } from "@hono/zod-openapi";
import { ERROR_CODES, type ErrorCode } from "../errors";
import { JOB_KINDS, JOB_PHASES, JOB_STATES, REASON_KINDS } from "../jobs/states";
import { MODEL_STATES } from "../db/models.repo";
import { Batching, KeepAlive, Pinned, Providers, SessionSettings, Warmup } from "../model-settings";
import { MODEL_ID_PATTERN, VERSION_PATTERN } from "../services/models.service";

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.enum(Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]]).openapi({ description: "Stable machine-readable code." }),
      message: z.string(),
      requestId: z.string().openapi({ description: "Also in the X-Request-Id header and in every log line of the request." }),
      details: z.unknown().optional().openapi({ description: "For VALIDATION_ERROR: the zod issues." }),
    }),
  })
  .openapi("Error");

const ErrorDetail = z.object({ code: z.string(), message: z.string() }).openapi("ErrorDetail");

const JobPhase = z.enum(JOB_PHASES);

export const JobOutcome = z
  .object({
    summary: z.string().openapi({ description: "`loaded on cpu`, `already-loaded`, `released`, `forced`, `not-loaded`…", example: "loaded on cpu" }),
    reclaimedBytes: z.number().int().min(0).optional().openapi({ description: "Every completed unload: the process's resident memory before the release minus after the worker ended (0 when nothing came back)." }),
    memoryBytes: z.number().int().min(0).optional().openapi({ description: "A load: the new session's measured resident cost." }),
    batching: z.boolean().optional().openapi({ description: "A load of a model with batching settings: false when its inputs or outputs lack a dynamic first dimension, so batching stays off." }),
    version: z.string().optional().openapi({ description: "The version serving after a load." }),
    replaced: z
      .object({ version: z.string(), release: z.enum(["released", "forced"]) })
      .optional()
      .openapi({ description: "A swap: the version it replaced, and whether that session drained (`released`) or was cut off at the unload timeout (`forced`)." }),
  })
  .openapi("JobOutcome");

export const Job = z
  .object({
    id: z.string().openapi({ example: "job_3q2ZyO1y0pXw8Qh2b3m7aQ" }),
    kind: z.enum(JOB_KINDS),
    modelId: z.string(),
    version: z.string().nullable().openapi({ description: "The version a load targets; null for an unload, which unloads the whole model." }),
    state: z.enum(JOB_STATES),
    phase: JobPhase.nullable().openapi({
      description:
        "The step the job is in (or the last one it reached): queued, verifying, creating_session, warming, switching, draining, releasing. docs/lifecycle.md says what each means.",
    }),
    timeline: z.array(z.object({ phase: JobPhase, at: z.string() })).openapi({ description: "When the job entered each phase, in order." }),
    outcome: JobOutcome.nullable().openapi({ description: "Null until the job completes." }),
    force: z.boolean(),
    activate: z.boolean(),
    reread: z.boolean().openapi({
      description:
        "A load that reads the version's file as it is now, as Triton's repository load does: a serving version whose file changed since it was registered is reloaded from it with no gap, and its size and sha256 are recorded anew once the new session serves. Other loads fail CHECKSUM_MISMATCH on a changed file, and complete as already-loaded for the version that serves.",
    }),
    error: ErrorDetail.nullable().openapi({ description: "Set when the job failed or was cancelled; codes are listed in the README." }),
    requestedBy: z.string().openapi({ description: "The `sub` of the token that asked for it, `restore`, or `system` (evictions and idle expiry)." }),
    reason: z
      .discriminatedUnion("kind", [
        z.object({ kind: z.literal("evicted"), for: z.string().openapi({ description: "The load that needed the room, as model@version." }) }),
        z.object({ kind: z.literal("idle") }),
        z.object({ kind: z.literal("on-demand") }),
      ])
      .nullable()
      .openapi({ description: "Why a job exists when no person asked for it directly; null for jobs people request." }),
    createdAt: z.string(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
  })
  .openapi("Job");

export const TensorInfo = z
  .object({
    name: z.string(),
    type: z.string().openapi({ description: "ONNX Runtime element type: float32, int64, string, …" }),
    shape: z.array(z.number().int()).openapi({ description: "-1 marks a dynamic dimension." }),
    dimNames: z.array(z.string().nullable()).optional(),
  })
  .openapi("TensorInfo");

const VersionString = z.string().regex(VERSION_PATTERN, "a positive integer, as a string").openapi({ example: "2" });

export const ModelVersion = z
  .object({
    version: VersionString,
    state: z.enum(MODEL_STATES),
    path: z.string().openapi({ description: "Relative to the model dir." }),
    sizeBytes: z.number().int().openapi({ description: "The model file's size, with the external data files it names." }),
    sha256: z.string().openapi({ description: "Of the model file, followed by the external data files it names, in that order; the plain file's sha256 when it names none." }),
    lastError: ErrorDetail.nullable().openapi({ description: "Why this version's last load failed." }),
    createdAt: z.string(),
    loadedAt: z.string().nullable(),
  })
  .openapi("ModelVersion");

export const Model = z
  .object({
    id: z.string(),
    path: z.string().openapi({ description: "The serving version's file (the newest version's when none serves), relative to the model dir." }),
    source: z.enum(["scan", "api"]),
    state: z.enum(MODEL_STATES).openapi({ description: "`loaded` while any version serves, including during a swap." }),
    active: z.boolean().openapi({ description: "True for the model made active by its most recent load; `POST /models/unload` targets it." }),
    sizeBytes: z.number().int(),
    sha256: z.string(),
    lastError: ErrorDetail.nullable(),
    inputs: z.array(TensorInfo).nullable().openapi({ description: "Read from ONNX Runtime when the version was loaded." }),
    outputs: z.array(TensorInfo).nullable(),
    providers: Providers.nullable(),
    warmup: Warmup,
    keepAlive: KeepAlive.nullable(),
    pinned: Pinned,
    session: SessionSettings,
    batching: Batching.nullable(),
    versions: z.array(ModelVersion).openapi({ description: "Every registered version, oldest first." }),
    servingVersion: z.string().nullable().openapi({ description: "The version answering unversioned requests, or null." }),
    memoryBytes: z.number().int().nullable().openapi({ description: "The serving version's resident cost, measured when it loaded; null when nothing serves." }),
    estimatedBytes: z.number().int().nullable().openapi({ description: "What loading the current version is expected to cost, and what it counts against MODELD_MEMORY_BUDGET: its file's last measured footprint (else its size × 1.2), never less than the file's size." }),
    lastUsedAt: z.string().nullable().openapi({ description: "When a request last started or finished on the serving session." }),
    expiresAt: z.string().nullable().openapi({ description: "When idle expiry will unload it, given its keepAlive; null when pinned, kept forever, in use or not loaded." }),
    createdAt: z.string(),
    updatedAt: z.string(),
    loadedAt: z.string().nullable(),
  })
  .openapi("Model");

export const ModelId = z.string().min(1).max(128).openapi({ param: { name: "id", in: "path" }, example: "demo" });
export const JobId = z.string().min(1).max(128).openapi({ param: { name: "id", in: "path" } });

export const RegisterModelBody = z
  .object({
    id: z.string().regex(MODEL_ID_PATTERN, "lowercase letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64").openapi({ example: "resnet50" }),
    path: z.string().min(1).max(4096).openapi({ description: "Inside the model dir; relative to it or absolute.", example: "resnet50/model.onnx" }),
    providers: Providers.optional(),
  })
  .strict()
  .openapi("RegisterModel");

export const AddVersionBody = z
  .object({
    path: z.string().min(1).max(4096).openapi({ description: "Inside the model dir; relative to it or absolute.", example: "resnet50/2/model.onnx" }),
    version: VersionString.optional().openapi({ description: "Defaults to the next number after the newest version." }),
  })
  .strict()
  .openapi("AddVersion");

export const LoadBody = z
  .object({ version: VersionString.optional().openapi({ description: "Defaults to the newest registered version." }) })
  .strict()
  .openapi("LoadModel");

export const RescanResult = z
  .object({
    added: z.array(z.object({ id: z.string(), version: z.string() })),
    updated: z.array(z.object({ id: z.string(), version: z.string() })).openapi({ description: "Versions not loaded whose file changed; their size and sha256 were recorded anew." }),
    skipped: z
      .array(z.object({ path: z.string().openapi({ description: "Relative to the model dir." }), reason: z.string() }))
      .openapi({ description: "Files and folders that look like models but were not registered, or not recorded anew, and why: a name that is not a valid model id, a path that escapes the model dir, a folder that cannot be read, a version folder with no model.onnx, the changed file of a version that serves (its record stays that of what serves)." }),
  })
  .openapi("RescanResult");

const boolParam = (def: "true" | "false", description: string) =>
  z.enum(["true", "false"]).default(def).transform((v) => v === "true").openapi({ description });

export const LoadQuery = z.object({
  activate: boolParam("true", "Make this model the active one once loaded."),
});
export const UnloadQuery = z.object({
  force: boolParam("false", "Answer in-flight requests with 503 at once instead of letting them finish."),
});
export const JobWaitQuery = z.object({
  wait: z.coerce.number().min(0).max(60).default(0).openapi({ description: "Long-poll: wait up to this many seconds for the job to finish. A server that is stopping answers within a second with the job as it stands." }),
});
export const JobListQuery = z.object({
  state: z.enum(JOB_STATES).optional(),
  kind: z.enum(JOB_KINDS).optional(),
  modelId: z.string().max(128).optional(),
  reason: z.enum(REASON_KINDS).optional().openapi({ description: "Only jobs with this reason: evictions, idle expiries, on-demand loads." }),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  before: z.string().max(128).optional().openapi({ description: "Page cursor: the `nextBefore` of the previous page." }),
});
export const JobList = z.object({ jobs: z.array(Job), nextBefore: z.string().nullable() }).openapi("JobList");
export const ModelList = z.object({ models: z.array(Model) }).openapi("ModelList");
export const ModelListQuery = z.object({
  state: z.enum(MODEL_STATES).optional().openapi({ description: "Only models in this state; `loaded` lists them most recently used first." }),
});

export const IdempotencyHeader = z.object({
  "idempotency-key": z.string().min(1).max(200).optional().openapi({
    description: "Repeat a POST safely: the same key and request return the original job; a different request gets 422.",
  }),
});

/** The `responses` entries for the listed error statuses, each with the one error shape. */
export function errorResponses(...statuses: number[]) {
  const descriptions: Record<number, string> = {
    400: "Invalid request",
    401: "Missing, malformed, expired or badly signed token",
    403: "Valid token without the needed role",
    404: "Not found",
    409: "Conflicts with the current state",
    413: "Body too large",
    422: "Idempotency-Key reused with a different request",
    429: "Too many unfinished jobs",
    500: "Internal error",
    503: "Unavailable for now; the error's code says why (a model unloading or its queue full, too many event streams, a disk modeld needs that failed)",
    507: "The disk that holds modeld's database is full; the write was rolled back whole",
  };
  return Object.fromEntries(
    statuses.map((s) => [s, { description: descriptions[s] ?? "Error", content: { "application/json": { schema: ErrorBody } } }]),
  );
}
