import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { TokenVerifier } from "../auth";
import type { Deps } from "../context";
import { AppError } from "../errors";
import { isFinished, type Job } from "../jobs/states";
import { infer, servingSession } from "../services/inference.service";
import { enqueueJob, waitForJob } from "../services/jobs.service";
import { currentVersion, getModel, getVersion, modelRef, newestVersion } from "../services/models.service";
import { protocolTensorInfo } from "../runtime/tensors";
import { inferenceAccess, requireRole } from "./auth";
import type { AppEnv } from "./env";
import { readInferRequest, writeInferResponse } from "./infer-body";
import * as r from "./v2.routes";

const REPOSITORY_STATE = { loaded: "READY", loading: "LOADING", unloading: "UNLOADING", unloaded: "UNAVAILABLE", failed: "UNAVAILABLE" } as const;

export function mountV2Routes(app: OpenAPIHono<AppEnv>, d: Deps, verify: TokenVerifier, opts: { version: string; isDraining?: () => boolean }): void {
  const auth = d.config.auth;
  const inference = inferenceAccess(auth, verify);
  const open = inference[0]!;
  const admin = requireRole(auth, "admin");

  app.openapi(r.liveRoute, (c) => c.json({ live: true }, 200));
  app.openapi(r.readyRoute, (c) => (opts.isDraining?.() ? c.json({ ready: false }, 503) : c.json({ ready: true }, 200)));

  app.openapi({ ...r.serverMetadataRoute, middleware: inference }, (c) =>
    c.json({ name: "modeld", version: opts.version, extensions: ["binary_tensor_data", "model_repository"] }, 200),
  );

  const metadata = (c: Context<AppEnv>, name: string, version?: string) => {
    const model = getModel(name, d);
    const registered = d.models.versions(name);
    // A version's metadata is what its session reported, live or recorded at its last load.
    const v = version === undefined ? currentVersion(model, registered) : getVersion(name, version, d);
    const live = d.runtime.get(name);
    const info = live?.info && live.version === String(v?.version) ? live.info : v?.inputs && v.outputs ? { inputs: v.inputs, outputs: v.outputs } : undefined;
    if (!info) throw new AppError("MODEL_NOT_LOADED", `${modelRef(name, version)} has not been loaded yet, so its inputs are unknown`);
    return c.json(
      {
        name,
        versions: registered.map((x) => String(x.version)),
        platform: "onnxruntime_onnx" as const,
        inputs: info.inputs.map(protocolTensorInfo),
        outputs: info.outputs.map(protocolTensorInfo),
      },
      200,
    );
  };
  app.openapi({ ...r.metadataRoutes.plain, middleware: inference }, (c) => metadata(c, c.req.valid("param").name));
  app.openapi({ ...r.metadataRoutes.versioned, middleware: inference }, (c) => metadata(c, c.req.valid("param").name, c.req.valid("param").version));

  const ready = (c: Context<AppEnv>, name: string, version?: string) => {
    const notReady = new AppError("MODEL_NOT_LOADED", `${modelRef(name, version)} is not ready`);
    try {
      if (servingSession(name, version, d).phase !== "ready") throw notReady;
    } catch (err) {
      throw err instanceof AppError && err.code === "MODEL_NOT_LOADED" ? notReady : err;
    }
    return c.json({ name, ready: true }, 200);
  };
  app.openapi({ ...r.readyRoutes.plain, middleware: inference }, (c) => ready(c, c.req.valid("param").name));
  app.openapi({ ...r.readyRoutes.versioned, middleware: inference }, (c) => ready(c, c.req.valid("param").name, c.req.valid("param").version));

  const runInfer = async (c: Context<AppEnv>) => {
    const req = await readInferRequest(c);
    return writeInferResponse(c, await infer(c.req.param("name")!, c.req.param("version"), req, d, c.get("principal").sub));
  };
  app.openAPIRegistry.registerPath(r.inferRouteDoc);
  app.openAPIRegistry.registerPath(r.inferVersionRouteDoc);
  for (const path of ["/v2/models/:name/infer", "/v2/models/:name/versions/:version/infer"]) {
    app.use(path, ...inference);
    app.post(path, runInfer);
  }

  // One entry per registered version, as Triton lists a model's versions; `{"ready": true}` keeps the serving ones.
  app.openapi({ ...r.repositoryIndexRoute, middleware: [open, admin] }, async (c) => {
    const onlyReady = (await c.req.json().catch(() => ({})))?.ready === true;
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
    if (kind === "unload" && model.state === "unloaded" && !d.jobs.latestUnfinished(name)) return c.json({}, 200);
    const version = kind === "load" ? newestVersion(name, d).version : undefined;
    const { job } = enqueueJob({ kind, modelId: name, version, requestedBy: c.get("principal").sub }, d);
    const bound = (kind === "load" ? d.config.jobs.loadTimeoutMs : d.config.jobs.unloadTimeoutMs) / 1000 + 5;
    const done: Job = await waitForJob(job.id, bound, d);
    if (done.state === "completed") return c.json({}, 200);
    const why = isFinished(done.state) ? (done.error?.message ?? done.state) : `job ${done.id} is still ${done.state}`;
    return c.json({ error: `failed to ${kind} ${name}: ${why}` }, 400);
  };
  app.openapi({ ...r.repositoryLoadRoute, middleware: [open, admin] }, (c) => runToEnd(c, "load") as never);
  app.openapi({ ...r.repositoryUnloadRoute, middleware: [open, admin] }, (c) => runToEnd(c, "unload") as never);
}
