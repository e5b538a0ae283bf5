import { createRoute, z } from "@hono/zod-openapi";
import { ModelSettingsPatch } from "../model-settings";
import { AddVersionBody, errorResponses, IdempotencyHeader, Job, LoadBody, LoadQuery, Model, ModelId, ModelList, ModelListQuery, RegisterModelBody, RescanResult, UnloadQuery } from "./schemas";

const security = [{ bearerAuth: [] }];
const tags = ["models"];
const jobAccepted = {
  description: "Accepted: the job row is committed. Poll the job (its URL is in Location) until it finishes.",
  headers: z.object({ Location: z.string().openapi({ description: "/api/v1/jobs/{jobId}" }) }),
  content: { "application/json": { schema: Job } },
};

export const listModelsRoute = createRoute({
  method: "get",
  path: "/api/v1/models",
  tags,
  security,
  summary: "List registered models; ?state=loaded lists what is loaded, most recently used first",
  request: { query: ModelListQuery },
  responses: { 200: { description: "All models", content: { "application/json": { schema: ModelList } } }, ...errorResponses(401, 403) },
});

export const getModelRoute = createRoute({
  method: "get",
  path: "/api/v1/models/{id}",
  tags,
  security,
  summary: "Get one model, with its state and, once loaded, its inputs and outputs",
  request: { params: z.object({ id: ModelId }) },
  responses: { 200: { description: "The model", content: { "application/json": { schema: Model } } }, ...errorResponses(401, 403, 404) },
});

export const registerModelRoute = createRoute({
  method: "post",
  path: "/api/v1/models",
  tags,
  security,
  summary: "Register a model file from the model dir (admin)",
  description:
    "The path must resolve inside MODELD_MODEL_DIR; `..`, outside absolute paths and escaping symlinks are refused with 400. The file becomes version 1; its size, sha256 (computed off the HTTP thread) and stat identity are recorded. Add versions with POST /api/v1/models/{id}/versions.",
  request: { body: { required: true, content: { "application/json": { schema: RegisterModelBody } } } },
  responses: {
    201: { description: "Registered", content: { "application/json": { schema: Model } } },
    ...errorResponses(400, 401, 403, 409, 413, 507),
  },
});

export const deleteModelRoute = createRoute({
  method: "delete",
  path: "/api/v1/models/{id}",
  tags,
  security,
  summary: "Remove a model from the registry (admin); the file stays",
  request: { params: z.object({ id: ModelId }) },
  responses: { 204: { description: "Deleted" }, ...errorResponses(401, 403, 404, 409, 507) },
});

export const loadModelRoute = createRoute({
  method: "post",
  path: "/api/v1/models/{id}/load",
  tags,
  security,
  summary: "Load a model version (admin): answers 202 with a job",
  description:
    "The optional body `{\"version\": \"2\"}` names the version; without it the newest registered version loads, even one that failed before. " +
    "When another version (or the same version with changed session settings) is serving, the job is a swap: the new session is created and warmed beside the old one, switched in at one instant, and the old one drained and released; no request fails because of it, and a swap that fails leaves the old version serving. " +
    "A second load of the same version while one is queued or running returns the same job. Loading the version already serving with the same settings completes as `already-loaded`. With `activate=true` (default) the model becomes the active one.",
  request: {
    params: z.object({ id: ModelId }),
    query: LoadQuery,
    headers: IdempotencyHeader,
    body: { required: false, content: { "application/json": { schema: LoadBody } } },
  },
  responses: { 202: jobAccepted, ...errorResponses(400, 401, 403, 404, 422, 429, 507) },
});

export const patchModelRoute = createRoute({
  method: "patch",
  path: "/api/v1/models/{id}",
  tags,
  security,
  summary: "Change a model's settings (admin)",
  description:
    "Changes only the fields named; unknown fields are 400. Settings that shape a session (warmup, providers) take effect at the next load: loading the version already serving then swaps in a fresh session of it, without downtime.",
  request: { params: z.object({ id: ModelId }), body: { required: true, content: { "application/json": { schema: ModelSettingsPatch } } } },
  responses: { 200: { description: "The updated model", content: { "application/json": { schema: Model } } }, ...errorResponses(400, 401, 403, 404, 413, 507) },
});

export const addVersionRoute = createRoute({
  method: "post",
  path: "/api/v1/models/{id}/versions",
  tags,
  security,
  summary: "Register a file as a new version of a model (admin)",
  description: "The same path rules as registering a model. The version defaults to the next number after the newest. The file is hashed off the HTTP thread.",
  request: { params: z.object({ id: ModelId }), body: { required: true, content: { "application/json": { schema: AddVersionBody } } } },
  responses: {
    201: { description: "Registered; the model with its versions", content: { "application/json": { schema: Model } } },
    ...errorResponses(400, 401, 403, 404, 409, 413, 507),
  },
});

export const deleteVersionRoute = createRoute({
  method: "delete",
  path: "/api/v1/models/{id}/versions/{version}",
  tags,
  security,
  summary: "Remove a version from the registry (admin); the file stays",
  description:
    "409 MODEL_BUSY while the version serves, loads or unloads, while a load of it is queued, and for the model's only version (delete the model instead). A scan or rescan registers the file again if it sits in the model dir's layout.",
  request: { params: z.object({ id: ModelId, version: z.string().min(1).max(32).openapi({ param: { name: "version", in: "path" }, example: "3" }) }) },
  responses: { 204: { description: "Removed" }, ...errorResponses(401, 403, 404, 409, 507) },
});

export const rescanRoute = createRoute({
  method: "post",
  path: "/api/v1/models/rescan",
  tags,
  security,
  summary: "Pick up new models and version folders in the model dir (admin)",
  description:
    "Synchronous, no job: answers when the scan is done. Registers `<id>.onnx`, `<id>/model.onnx` (version 1) and Triton's `<id>/<n>/model.onnx` (version n), and refreshes the size and sha256 of changed files whose version is not loaded.",
  responses: { 200: { description: "What the scan found", content: { "application/json": { schema: RescanResult } } }, ...errorResponses(401, 403, 503, 507) },
});

export const unloadActiveRoute = createRoute({
  method: "post",
  path: "/api/v1/models/unload",
  tags,
  security,
  summary: "Unload the active model (admin): answers 202 with a job",
  description:
    "Waits for in-flight requests (up to MODELD_UNLOAD_TIMEOUT_MS), then releases the session. `force=true` does not wait: requests still in flight get 503 at once, and the worker releases the session as soon as ONNX Runtime returns from the call it is in. 409 NO_ACTIVE_MODEL when no model is active.",
  request: { query: UnloadQuery, headers: IdempotencyHeader },
  responses: { 202: jobAccepted, ...errorResponses(400, 401, 403, 409, 422, 429, 507) },
});

export const unloadModelRoute = createRoute({
  method: "post",
  path: "/api/v1/models/{id}/unload",
  tags,
  security,
  summary: "Unload a named model (admin): answers 202 with a job",
  request: { params: z.object({ id: ModelId }), query: UnloadQuery, headers: IdempotencyHeader },
  responses: { 202: jobAccepted, ...errorResponses(400, 401, 403, 404, 409, 422, 429, 507) },
});
