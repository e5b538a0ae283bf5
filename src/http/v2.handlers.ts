import type { Context } from "hono";
import type { Deps } from "../context";
import { AppError } from "../errors";
import { isFinished, type Job } from "../jobs/states";
import { infer, servingSession } from "../services/inference.service";
import { enqueueJob, waitForJob } from "../services/jobs.service";
import { getModel, modelRef, newestVersion } from "../services/models.service";
import { modelConfig, modelStats, versionInfo } from "../services/triton.service";
import { protocolTensorInfo } from "../runtime/tensors";
import type { AppOptions, V2Routers } from "./app";
import type { AppEnv } from "./env";
import { readInferRequest, writeInferResponse } from "./infer-body";
import * as r from "./v2.routes";
import { RepositoryActionBody, RepositoryIndexBody } from "./v2.schemas";
import { optionalJson } from "./body";

/**
 * tritonclient sends `{"parameters":{"unload_dependents":false}}` on unload and
 * `{"parameters":{"config": ...}}` to override a configuration on load. modeld
 * takes a model's settings from PATCH /api/v1/models/{id} instead, so an
 * override is refused rather than silently ignored.
 */
function checkRepositoryParameters(kind: "load" | "unload", parameters: Record<string, unknown> | undefined): void {
  for (const key of Object.keys(parameters ?? {})) {
    if (key === "unload_dependents" && kind === "unload") continue;
    if (key === "config") {
      throw new AppError("VALIDATION_ERROR", "a config override on load is not supported: set the model's batching, session and warmup with PATCH /api/v1/models/{id}, then load");
    }
    if (key.startsWith("file:")) throw new AppError("VALIDATION_ERROR", "uploading model files with a load is not supported: put them in the model dir and rescan, or POST /api/v1/models/{id}/versions");
    throw new AppError("VALIDATION_ERROR", `unknown ${kind} parameter ${key}${kind === "unload" ? "; only unload_dependents is accepted" : "; none are accepted"}`);
  }
}

const REPOSITORY_STATE = { loaded: "READY", loading: "LOADING", unloading: "UNLOADING", unloaded: "UNAVAILABLE", failed: "UNAVAILABLE" } as const;

export function mountV2Routes({ open, read, infer: inference, repository }: V2Routers, d: Deps, opts: AppOptions & { version: string }): void {
  open.openapi(r.liveRoute, (c) => c.json({ live: true }, 200));
  open.openapi(r.readyRoute, (c) => (opts.isDraining?.() || opts.isReady?.() === false ? c.json({ ready: false }, 503) : c.json({ ready: true }, 200)));

  read.openapi(r.serverMetadataRoute, (c) =>
    c.json({ name: "modeld", version: opts.version, extensions: ["binary_tensor_data", "model_repository", "model_configuration", "statistics"] }, 200),
  );

  // Before the metadata route, so "stats" is never read as a model name.
  read.openapi(r.statsRoutes.all, (c) => c.json(modelStats(undefined, undefined, d), 200));
  read.openapi(r.statsRoutes.plain, (c) => c.json(modelStats(c.req.valid("param").name, undefined, d), 200));
  read.openapi(r.statsRoutes.versioned, (c) => c.json(modelStats(c.req.valid("param").name, c.req.valid("param").version, d), 200));
  read.openapi(r.configRoutes.plain, (c) => c.json(modelConfig(c.req.valid("param").name, undefined, d) as never, 200));
  read.openapi(r.configRoutes.versioned, (c) => c.json(modelConfig(c.req.valid("param").name, c.req.valid("param").version, d) as never, 200));

  const metadata = (c: Context<AppEnv>, name: string, version?: string) => {
    const info = versionInfo(name, version, d);
    return c.json(
      {
        name,
        versions: d.models.versions(name).map((x) => String(x.version)),
        platform: "onnxruntime_onnx" as const,
        inputs: info.inputs.map(protocolTensorInfo),
        outputs: info.outputs.map(protocolTensorInfo),
      },
      200,
    );
  };
  read.openapi(r.metadataRoutes.plain, (c) => metadata(c, c.req.valid("param").name));
  read.openapi(r.metadataRoutes.versioned, (c) => metadata(c, c.req.valid("param").name, c.req.valid("param").version));

  const ready = (c: Context<AppEnv>, name: string, version?: string) => {
    const notReady = new AppError("MODEL_NOT_LOADED", `${modelRef(name, version)} is not ready`);
    try {
      if (servingSession(name, version, d).phase !== "ready") throw notReady;
    } catch (err) {
      throw err instanceof AppError && err.code === "MODEL_NOT_LOADED" ? notReady : err;
    }
    return c.json({ name, ready: true }, 200);
  };
  read.openapi(r.readyRoutes.plain, (c) => ready(c, c.req.valid("param").name));
  read.openapi(r.readyRoutes.versioned, (c) => ready(c, c.req.valid("param").name, c.req.valid("param").version));

  const runInfer = async (c: Context<AppEnv>) => {
    const req = await readInferRequest(c);
    return writeInferResponse(c, await infer(c.req.param("name")!, c.req.param("version"), req, d, c.get("principal").sub));
  };
  inference.doc(r.inferRouteDoc);
  inference.doc(r.inferVersionRouteDoc);
  inference.post("/v2/models/:name/infer", runInfer);
  inference.post("/v2/models/:name/versions/:version/infer", runInfer);

  // One entry per registered version, as Triton lists a model's versions; `{"ready": true}` keeps the serving ones.
  repository.openapi(r.repositoryIndexRoute, async (c) => {
    const onlyReady = (await optionalJson(c, RepositoryIndexBody)).ready === true;
    const entries = d.models.list().flatMap((m) =>
      d.models.versions(m.id).map((v) => ({
        name: m.id,
        version: String(v.version),
        state: REPOSITORY_STATE[v.state],
        reason: v.lastError?.message ?? (v.state === "unloaded" ? "unloaded" : ""),
      })),
    );
    return c.json(onlyReady ? entries.filter((e) => e.state === "READY") : entries, 200);
  });

  // Triton's clients expect these to answer when the work is done, not with a job.
  const runToEnd = async (c: Context<AppEnv>, kind: "load" | "unload") => {
    const name = c.req.param("name")!;
    const model = getModel(name, d);
    checkRepositoryParameters(kind, (await optionalJson(c, RepositoryActionBody)).parameters);
    if (kind === "unload" && model.state === "unloaded" && !d.jobs.latestUnfinished(name)) return c.json({}, 200);
    const version = kind === "load" ? newestVersion(name, d).version : undefined;
    const { job } = enqueueJob({ kind, modelId: name, version, requestedBy: c.get("principal").sub }, d);
    const bound = (kind === "load" ? d.config.jobs.loadTimeoutMs : d.config.jobs.unloadTimeoutMs) / 1000 + 5;
    const done: Job = await waitForJob(job.id, bound, d);
    if (done.state === "completed") return c.json({}, 200);
    const why = isFinished(done.state) ? (done.error?.message ?? done.state) : `job ${done.id} is still ${done.state}`;
    return c.json({ error: `failed to ${kind} ${name}: ${why}` }, 400);
  };
  repository.openapi(r.repositoryLoadRoute, (c) => runToEnd(c, "load") as never);
  repository.openapi(r.repositoryUnloadRoute, (c) => runToEnd(c, "unload") as never);
}
