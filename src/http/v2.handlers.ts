import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { TokenVerifier } from "../auth";
import type { Deps } from "../context";
import { AppError } from "../errors";
import { isFinished, type Job } from "../jobs/states";
import { infer, MODEL_VERSION } from "../services/inference.service";
import { enqueueJob, waitForJob } from "../services/jobs.service";
import { getModel } from "../services/models.service";
import { protocolTensorInfo } from "../runtime/tensors";
import { inferenceAccess, requireRole } from "./auth";
import type { AppEnv } from "./env";
import { readInferRequest, writeInferResponse } from "./infer-body";
import * as r from "./v2.routes";

const REPOSITORY_STATE = { loaded: "READY", loading: "LOADING", unloading: "UNLOADING", unloaded: "UNAVAILABLE", failed: "UNAVAILABLE" } as const;

function checkVersion(version: string | undefined): void {
  if (version !== undefined && version !== MODEL_VERSION) throw new AppError("MODEL_NOT_FOUND", `model version ${version} not found; modeld serves version ${MODEL_VERSION}`);
}

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
    checkVersion(version);
    const model = getModel(name, d);
    const info = d.runtime.get(name)?.info ?? (model.inputs && model.outputs ? { inputs: model.inputs, outputs: model.outputs } : undefined);
    if (!info) throw new AppError("MODEL_NOT_LOADED", `model ${name} has not been loaded yet, so its inputs are unknown`);
    return c.json(
      { name, versions: [MODEL_VERSION], platform: "onnxruntime_onnx" as const, inputs: info.inputs.map(protocolTensorInfo), outputs: info.outputs.map(protocolTensorInfo) },
      200,
    );
  };
  app.openapi({ ...r.metadataRoutes.plain, middleware: inference }, (c) => metadata(c, c.req.valid("param").name));
  app.openapi({ ...r.metadataRoutes.versioned, middleware: inference }, (c) => metadata(c, c.req.valid("param").name, c.req.valid("param").version));

  const ready = (c: Context<AppEnv>, name: string, version?: string) => {
    checkVersion(version);
    getModel(name, d);
    if (d.runtime.get(name)?.phase !== "ready") throw new AppError("MODEL_NOT_LOADED", `model ${name} is not ready`);
    return c.json({ name, ready: true }, 200);
  };
  app.openapi({ ...r.readyRoutes.plain, middleware: inference }, (c) => ready(c, c.req.valid("param").name));
  app.openapi({ ...r.readyRoutes.versioned, middleware: inference }, (c) => ready(c, c.req.valid("param").name, c.req.valid("param").version));

  const runInfer = async (c: Context<AppEnv>) => {
    checkVersion(c.req.param("version"));
    const req = await readInferRequest(c);
    return writeInferResponse(c, await infer(c.req.param("name")!, req, d));
  };
  app.openAPIRegistry.registerPath(r.inferRouteDoc);
  app.openAPIRegistry.registerPath(r.inferVersionRouteDoc);
  for (const path of ["/v2/models/:name/infer", "/v2/models/:name/versions/:version/infer"]) {
    app.use(path, ...inference);
    app.post(path, runInfer);
  }

  app.openapi({ ...r.repositoryIndexRoute, middleware: [open, admin] }, (c) =>
    c.json(
      d.models.list().map((m) => ({
        name: m.id,
        version: MODEL_VERSION,
        state: REPOSITORY_STATE[m.state],
        reason: m.lastError?.message ?? (m.state === "unloaded" ? "unloaded" : ""),
      })),
      200,
    ),
  );

  // Triton's clients expect these to answer when the work is done, not with a job.
  const runToEnd = async (c: Context<AppEnv>, kind: "load" | "unload") => {
    const name = c.req.param("name")!;
    const model = getModel(name, d);
    if (kind === "unload" && model.state === "unloaded" && !d.jobs.latestUnfinished(name)) return c.json({}, 200);
    const { job } = enqueueJob({ kind, modelId: name, requestedBy: c.get("principal").sub }, d);
    const bound = (kind === "load" ? d.config.jobs.loadTimeoutMs : d.config.jobs.unloadTimeoutMs) / 1000 + 5;
    const done: Job = await waitForJob(job.id, bound, d);
    if (done.state === "completed") return c.json({}, 200);
    const why = isFinished(done.state) ? (done.error?.message ?? done.state) : `job ${done.id} is still ${done.state}`;
    return c.json({ error: `failed to ${kind} ${name}: ${why}` }, 400);
  };
  app.openapi({ ...r.repositoryLoadRoute, middleware: [open, admin] }, (c) => runToEnd(c, "load") as never);
  app.openapi({ ...r.repositoryUnloadRoute, middleware: [open, admin] }, (c) => runToEnd(c, "unload") as never);
}
