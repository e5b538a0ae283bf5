import { createHash } from "node:crypto";
import type { Context } from "hono";
import type { Deps } from "../context";
import type { Job } from "../jobs/states";
import { enqueueJob, type EnqueueInput } from "../services/jobs.service";
import { activeModelId, addVersion, deleteVersion, listModels, deleteModel, getModel, getVersion, newestVersion, registerModel, scanModelDir, toView, updateSettings } from "../services/models.service";
import type { ApiRouters } from "./app";
import type { AppEnv } from "./env";
import {
  addVersionRoute,
  deleteModelRoute,
  deleteVersionRoute,
  patchModelRoute,
  rescanRoute,
  getModelRoute,
  listModelsRoute,
  loadModelRoute,
  registerModelRoute,
  unloadActiveRoute,
  unloadModelRoute,
} from "./models.routes";

/** The request an Idempotency-Key stands for: method, path, query and the body's meaning. */
export function idempotencyOf(c: Context<AppEnv>, body: unknown = {}): EnqueueInput["idempotency"] {
  const key = c.req.header("idempotency-key");
  if (!key) return undefined;
  const url = new URL(c.req.url);
  url.searchParams.sort();
  const requestHash = createHash("sha256").update(`${c.req.method} ${url.pathname}?${url.searchParams} ${JSON.stringify(body)}`).digest("hex");
  return { key, requestHash };
}

export function accepted(c: Context<AppEnv>, job: Job) {
  return c.json(job, 202, { Location: `/api/v1/jobs/${job.id}` });
}

export function mountModelRoutes({ read, admin }: ApiRouters, d: Deps): void {
  read.openapi(listModelsRoute, (c) => c.json({ models: listModels(c.req.valid("query"), d) }, 200));

  read.openapi(getModelRoute, (c) => c.json(toView(getModel(c.req.valid("param").id, d), d), 200));

  // Registering hashes the files: minutes for a big repository or model, past the listener's idle timeout.
  admin.openapi(registerModelRoute, async (c) => {
    c.env?.awaitingWork?.();
    const model = await registerModel(c.req.valid("json"), d);
    return c.json(toView(model, d), 201);
  });

  admin.openapi(deleteModelRoute, (c) => {
    const { id } = c.req.valid("param");
    deleteModel(id, d);
    return c.body(null, 204);
  });

  admin.openapi(rescanRoute, async (c) => {
    c.env?.awaitingWork?.();
    return c.json(await scanModelDir(d), 200);
  });

  admin.openapi(patchModelRoute, (c) =>
    c.json(toView(updateSettings(c.req.valid("param").id, c.req.valid("json"), d), d), 200),
  );

  admin.openapi(addVersionRoute, async (c) => {
    c.env?.awaitingWork?.();
    const model = await addVersion(c.req.valid("param").id, c.req.valid("json"), d);
    return c.json(toView(model, d), 201);
  });

  admin.openapi(deleteVersionRoute, (c) => {
    const { id, version } = c.req.valid("param");
    deleteVersion(id, version, d);
    return c.body(null, 204);
  });

  admin.openapi(loadModelRoute, (c) => {
    const model = getModel(c.req.valid("param").id, d);
    const body = c.req.valid("json");
    const version = body.version === undefined ? newestVersion(model.id, d) : getVersion(model.id, body.version, d);
    const { job } = enqueueJob(
      {
        kind: "load",
        modelId: model.id,
        version: version.version,
        activate: c.req.valid("query").activate,
        requestedBy: c.get("principal").sub,
        idempotency: idempotencyOf(c, body),
      },
      d,
    );
    return accepted(c, job);
  });

  admin.openapi(unloadActiveRoute, (c) => {
    const { job } = enqueueJob(
      { kind: "unload", modelId: activeModelId(d), force: c.req.valid("query").force, requestedBy: c.get("principal").sub, idempotency: idempotencyOf(c) },
      d,
    );
    return accepted(c, job);
  });

  admin.openapi(unloadModelRoute, (c) => {
    const model = getModel(c.req.valid("param").id, d);
    const { job } = enqueueJob(
      { kind: "unload", modelId: model.id, force: c.req.valid("query").force, requestedBy: c.get("principal").sub, idempotency: idempotencyOf(c) },
      d,
    );
    return accepted(c, job);
  });
}
