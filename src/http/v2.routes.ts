import { createRoute, z } from "@hono/zod-openapi";
import {
  InferRequestSchema,
  InferResponse,
  ModelConfig,
  ModelMetadata,
  ModelStatistics,
  protocolErrors,
  RepositoryEntry,
  ShmRegionStatus,
} from "./v2.schemas";

const tags = ["inference (v2)"];
const security = [{ bearerAuth: [] }];
const Name = z.string().min(1).max(128).openapi({ param: { name: "name", in: "path" }, example: "demo" });
const Version = z.string().min(1).max(32).openapi({ param: { name: "version", in: "path" }, example: "1" });

export const serverMetadataRoute = createRoute({
  method: "get",
  path: "/v2",
  tags,
  security,
  summary: "Server metadata",
  responses: {
    200: { description: "Name, version and extensions", content: { "application/json": { schema: z.object({ name: z.string(), version: z.string(), extensions: z.array(z.string()) }) } } },
    ...protocolErrors(401, 403),
  },
});

export const liveRoute = createRoute({
  method: "get",
  path: "/v2/health/live",
  tags,
  summary: "Liveness (open)",
  responses: { 200: { description: "The process is up", content: { "application/json": { schema: z.object({ live: z.boolean() }) } } } },
});

export const readyRoute = createRoute({
  method: "get",
  path: "/v2/health/ready",
  tags,
  summary: "Readiness (open): 503 until the models MODELD_LOAD_ON_START names serve, and while shutting down",
  responses: {
    200: { description: "Accepting requests", content: { "application/json": { schema: z.object({ ready: z.boolean() }) } } },
    503: { description: "Not ready: a model named by MODELD_LOAD_ON_START does not serve yet, or shutting down", content: { "application/json": { schema: z.object({ ready: z.boolean() }) } } },
  },
});

/** The protocol serves each model route with and without `/versions/{version}`. */
function withVersions<S extends string>(suffix: S, summary: string, responses: ReturnType<typeof modelResponses>) {
  return {
    plain: createRoute({
      method: "get", path: `/v2/models/{name}${suffix}`, tags, security, summary,
      request: { params: z.object({ name: Name }) }, responses,
    }),
    versioned: createRoute({
      method: "get", path: `/v2/models/{name}/versions/{version}${suffix}`, tags, security, summary: `${summary}, for one version`,
      request: { params: z.object({ name: Name, version: Version }) }, responses,
    }),
  };
}

function modelResponses<T extends z.ZodType>(description: string, schema: T) {
  return { 200: { description, content: { "application/json": { schema } } }, ...protocolErrors(400, 401, 403, 404) };
}

export const metadataRoutes = withVersions("", "Model metadata", modelResponses("Model metadata with protocol datatypes; -1 marks a dynamic dimension", ModelMetadata));
export const readyRoutes = withVersions(
  "/ready",
  "Model readiness: 200 when the version (or, unversioned, the serving version) serves, 400 otherwise, 404 for an unknown model or version",
  modelResponses("Loaded and serving", z.object({ name: z.string(), ready: z.boolean() })),
);

export const configRoutes = withVersions(
  "/config",
  "Model configuration (Triton's model configuration extension): 400 until the version has been loaded once",
  modelResponses("The version's configuration: the serving version's, unversioned", ModelConfig),
);

const statsDescription = "Triton's statistics extension. Counters are integers and are updated before the response to the request they count is sent.";
export const statsRoutes = {
  all: createRoute({
    method: "get", path: "/v2/models/stats", tags, security, summary: "Inference statistics of every registered model version", description: statsDescription,
    responses: modelResponses("One entry per registered version", ModelStatistics),
  }),
  ...withVersions("/stats", "Inference statistics", modelResponses("One entry per registered version of the model, or the one asked for", ModelStatistics)),
};

const inferDoc = {
  tags,
  security,
  summary: "Run inference",
  description:
    "Unversioned, the serving version answers; under /versions/{version}, that version answers while it serves (400 when it does not, 404 when it is not registered). `model_version` names the version that ran. JSON, or the binary tensor data extension: send `Inference-Header-Content-Length: N`, N bytes of JSON header, then each input's raw little-endian bytes (BYTES elements as a uint32 length plus the bytes). 503 with Retry-After when the model's queue is full or it is unloading.",
  request: {
    body: {
      required: true,
      content: {
        "application/json": { schema: InferRequestSchema },
        "application/octet-stream": { schema: { type: "string" as const, format: "binary" } },
      },
    },
  },
  responses: {
    200: {
      description: "Outputs; binary outputs follow the JSON header",
      content: { "application/json": { schema: InferResponse }, "application/octet-stream": { schema: { type: "string" as const, format: "binary" } } },
    },
    ...protocolErrors(400, 401, 403, 404, 413, 503, 507),
  },
};
export const inferRouteDoc = { ...inferDoc, method: "post" as const, path: "/v2/models/{name}/infer", request: { ...inferDoc.request, params: z.object({ name: Name }) } };
export const inferVersionRouteDoc = {
  ...inferDoc,
  method: "post" as const,
  path: "/v2/models/{name}/versions/{version}/infer",
  request: { ...inferDoc.request, params: z.object({ name: Name, version: Version }) },
};

const repoTags = ["model repository (v2)"];
// Triton's clients send these bodies with any Content-Type or none, so they are read by hand (see v2.handlers.ts).
const actionBody = "The optional JSON body `{\"parameters\": {...}}`: unload accepts `unload_dependents` (modeld has no ensembles, so it changes nothing); a `config` override or a `file:` upload on load is refused with 400 (set batching, session and warmup with PATCH /api/v1/models/{id}).";
export const repositoryIndexRoute = createRoute({
  method: "post", path: "/v2/repository/index", tags: repoTags, security, summary: "List every model version with its state (admin)",
  description: "One entry per registered version: READY while it serves, LOADING, UNLOADING, or UNAVAILABLE with the reason. The optional body `{\"ready\": true}` lists only READY versions.",
  responses: { 200: { description: "Every registered version", content: { "application/json": { schema: z.array(RepositoryEntry) } } }, ...protocolErrors(401, 403) },
});
export const repositoryLoadRoute = createRoute({
  method: "post", path: "/v2/repository/models/{name}/load", tags: repoTags, security,
  summary: "Load a model and answer when its job has finished (admin)",
  description: `Reads the model's folder in the model dir again, as Triton's load does (a version folder, or the whole model, copied in since the last scan is registered first; 404 naming why when the folder holds no model modeld can register), then runs through the same job queue as POST /api/v1/models/{id}/load and loads the newest version the folder holds (a swap, without downtime, when another serves; a version whose folder was removed is passed over, though it stays registered, so removing a bad version and loading rolls back). If that version serves and its file was overwritten in place since it was registered, it is reloaded from the file, also without downtime, and its size and sha256 are recorded anew; if the new file cannot load, the old session goes on serving and the error is answered (the job's \`reread\` is true). 200 when the job completed, 400 with the job's error otherwise. ${actionBody}`,
  request: { params: z.object({ name: Name }) },
  responses: { 200: { description: "Loaded", content: { "application/json": { schema: z.object({}) } } }, ...protocolErrors(400, 401, 403, 404, 503, 507) },
});
export const repositoryUnloadRoute = createRoute({
  method: "post", path: "/v2/repository/models/{name}/unload", tags: repoTags, security,
  summary: "Unload a model and answer when its job has finished (admin)",
  description: actionBody,
  request: { params: z.object({ name: Name }) },
  responses: { 200: { description: "Unloaded", content: { "application/json": { schema: z.object({}) } } }, ...protocolErrors(400, 401, 403, 404, 507) },
});

const shmTags = ["shared memory (v2)"];
const Region = z.string().min(1).max(256).openapi({ param: { name: "region", in: "path" }, example: "input0" });
const shmOff = "Off unless the operator sets MODELD_ALLOW_CLIENT_SHM=true (Triton's --allow-client-shm): a registered region lets inference callers read and write that memory through a model.";
export const shmStatusRoutes = {
  all: createRoute({
    method: "get", path: "/v2/systemsharedmemory/status", tags: shmTags, security, summary: "Every registered system shared memory region (admin)",
    description: `Triton's system shared memory extension. ${shmOff}`,
    responses: { 200: { description: "The regions", content: { "application/json": { schema: z.array(ShmRegionStatus) } } }, ...protocolErrors(401, 403) },
  }),
  one: createRoute({
    method: "get", path: "/v2/systemsharedmemory/region/{region}/status", tags: shmTags, security, summary: "One registered system shared memory region (admin)",
    request: { params: z.object({ region: Region }) },
    responses: { 200: { description: "The region", content: { "application/json": { schema: z.array(ShmRegionStatus) } } }, ...protocolErrors(400, 401, 403) },
  }),
};
export const shmRegisterRoute = createRoute({
  method: "post", path: "/v2/systemsharedmemory/region/{region}/register", tags: shmTags, security, summary: "Register a system shared memory region (admin)",
  description: `The body \`{"key": "/name", "offset": 0, "byte_size": n}\` names a POSIX shared memory object (\`/dev/shm/name\`, opened read-write, never through a symlink) and the bytes of it the region covers. An input names the region in its parameters (\`shared_memory_region\`, \`shared_memory_byte_size\`, optional \`shared_memory_offset\`) instead of sending data; an output named so is written there, and the response lists it with those parameters and no data. ${shmOff}`,
  request: { params: z.object({ region: Region }) },
  responses: { 200: { description: "Registered", content: { "application/json": { schema: z.object({}) } } }, ...protocolErrors(400, 401, 403) },
});
export const shmUnregisterRoutes = {
  all: createRoute({
    method: "post", path: "/v2/systemsharedmemory/unregister", tags: shmTags, security, summary: "Unregister every system shared memory region (admin)",
    responses: { 200: { description: "Unregistered", content: { "application/json": { schema: z.object({}) } } }, ...protocolErrors(400, 401, 403) },
  }),
  one: createRoute({
    method: "post", path: "/v2/systemsharedmemory/region/{region}/unregister", tags: shmTags, security, summary: "Unregister one system shared memory region (admin)",
    description: "A request already reading or writing the region finishes first. An unknown name is already unregistered.",
    request: { params: z.object({ region: Region }) },
    responses: { 200: { description: "Unregistered", content: { "application/json": { schema: z.object({}) } } }, ...protocolErrors(400, 401, 403) },
  }),
};
const cudaShm = "CUDA shared memory: onnxruntime-node takes tensors from host memory only, so no CUDA region can be registered; status lists none and unregister has nothing to do, so clients that clear regions first (perf_analyzer) go on.";
export const cudaShmRoutes = {
  status: createRoute({
    method: "get", path: "/v2/cudasharedmemory/status", tags: shmTags, security, summary: "CUDA shared memory regions: none (admin)", description: cudaShm,
    responses: { 200: { description: "None", content: { "application/json": { schema: z.array(z.object({})) } } }, ...protocolErrors(401, 403) },
  }),
  register: createRoute({
    method: "post", path: "/v2/cudasharedmemory/region/{region}/register", tags: shmTags, security, summary: "Register a CUDA shared memory region: refused (admin)", description: cudaShm,
    request: { params: z.object({ region: Region }) },
    responses: { ...protocolErrors(400, 401, 403) },
  }),
  unregister: createRoute({
    method: "post", path: "/v2/cudasharedmemory/unregister", tags: shmTags, security, summary: "Unregister every CUDA shared memory region: nothing to do (admin)", description: cudaShm,
    responses: { 200: { description: "Nothing was registered", content: { "application/json": { schema: z.object({}) } } }, ...protocolErrors(401, 403) },
  }),
};
