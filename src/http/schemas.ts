// The zod schemas behind validation, handler types and the OpenAPI document.
import { z } from "@hono/zod-openapi";
import { ERROR_CODES, type ErrorCode } from "../errors";
import { JOB_KINDS, JOB_STATES } from "../jobs/states";
import { MODEL_STATES } from "../db/models.repo";
import { MODEL_ID_PATTERN } from "../services/models.service";

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

export const Job = z
  .object({
    id: z.string().openapi({ example: "job_3q2ZyO1y0pXw8Qh2b3m7aQ" }),
    kind: z.enum(JOB_KINDS),
    modelId: z.string(),
    state: z.enum(JOB_STATES),
    phase: z.string().nullable().openapi({ description: "What the job is doing or did: loading, draining, loaded on cpu, released, forced, already-loaded…" }),
    force: z.boolean(),
    activate: z.boolean(),
    error: ErrorDetail.nullable().openapi({ description: "Set when the job failed or was cancelled; codes are listed in the README." }),
    requestedBy: z.string().openapi({ description: "The `sub` of the token that asked for it, or `restore`." }),
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

export const Model = z
  .object({
    id: z.string(),
    path: z.string().openapi({ description: "Relative to the model dir." }),
    source: z.enum(["scan", "api"]),
    state: z.enum(MODEL_STATES),
    active: z.boolean().openapi({ description: "True for the model made active by its most recent load; `POST /models/unload` targets it." }),
    sizeBytes: z.number().int(),
    sha256: z.string(),
    lastError: ErrorDetail.nullable(),
    inputs: z.array(TensorInfo).nullable().openapi({ description: "Read from ONNX Runtime at the first load." }),
    outputs: z.array(TensorInfo).nullable(),
    providers: z.array(z.string()).nullable().openapi({ description: "Execution providers for this model, overriding MODELD_EXECUTION_PROVIDERS." }),
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
    providers: z.array(z.enum(["cuda", "cpu"])).min(1).optional(),
  })
  .strict()
  .openapi("RegisterModel");

const boolParam = (def: "true" | "false", description: string) =>
  z.enum(["true", "false"]).default(def).transform((v) => v === "true").openapi({ description });

export const LoadQuery = z.object({
  activate: boolParam("true", "Make this model the active one once loaded."),
});
export const UnloadQuery = z.object({
  force: boolParam("false", "Answer in-flight requests with 503 at once instead of letting them finish."),
});
export const JobWaitQuery = z.object({
  wait: z.coerce.number().min(0).max(60).default(0).openapi({ description: "Long-poll: wait up to this many seconds for the job to finish." }),
});
export const JobListQuery = z.object({
  state: z.enum(JOB_STATES).optional(),
  kind: z.enum(JOB_KINDS).optional(),
  modelId: z.string().max(128).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  before: z.string().max(128).optional().openapi({ description: "Page cursor: the `nextBefore` of the previous page." }),
});
export const JobList = z.object({ jobs: z.array(Job), nextBefore: z.string().nullable() }).openapi("JobList");
export const ModelList = z.object({ models: z.array(Model) }).openapi("ModelList");

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
  };
  return Object.fromEntries(
    statuses.map((s) => [s, { description: descriptions[s] ?? "Error", content: { "application/json": { schema: ErrorBody } } }]),
  );
}
