import type { Context } from "hono";
import type { Deps } from "../context";
import { AppError } from "../errors";
import { modelRef } from "../services/models.service";
import {
  modelConfig,
  modelMetadata,
  modelReady,
  modelStats,
  repositoryIndex,
  runRepositoryAction,
  serverExtensions,
} from "../services/triton.service";
import type { AppOptions, V2Routers } from "./app";
import type { AppEnv } from "./env";
import { serveInference } from "./infer-body";
import * as r from "./v2.routes";
import { RepositoryActionBody, RepositoryIndexBody, ShmRegisterBody } from "./v2.schemas";
import { optionalJson } from "./body";
import { cudaSharedMemoryRefused } from "../services/shared-memory";

export function mountV2Routes({ open, read, infer: inference, repository }: V2Routers, d: Deps, opts: AppOptions & { version: string }): void {
  open.openapi(r.liveRoute, (c) => c.json({ live: true }, 200));
  open.openapi(r.readyRoute, (c) => (opts.isDraining?.() || opts.isReady?.() === false ? c.json({ ready: false }, 503) : c.json({ ready: true }, 200)));

  read.openapi(r.serverMetadataRoute, (c) =>
    c.json({ name: "modeld", version: opts.version, extensions: serverExtensions(d) }, 200),
  );

  // Before the metadata route, so "stats" is never read as a model name.
  read.openapi(r.statsRoutes.all, (c) => c.json(modelStats(undefined, undefined, d), 200));
  read.openapi(r.statsRoutes.plain, (c) => c.json(modelStats(c.req.valid("param").name, undefined, d), 200));
  read.openapi(r.statsRoutes.versioned, (c) => c.json(modelStats(c.req.valid("param").name, c.req.valid("param").version, d), 200));
  read.openapi(r.configRoutes.plain, (c) => c.json(modelConfig(c.req.valid("param").name, undefined, d) as never, 200));
  read.openapi(r.configRoutes.versioned, (c) => c.json(modelConfig(c.req.valid("param").name, c.req.valid("param").version, d) as never, 200));

  const metadata = (c: Context<AppEnv>, name: string, version?: string) => c.json(modelMetadata(name, version, d), 200);
  read.openapi(r.metadataRoutes.plain, (c) => metadata(c, c.req.valid("param").name));
  read.openapi(r.metadataRoutes.versioned, (c) => metadata(c, c.req.valid("param").name, c.req.valid("param").version));

  const ready = (c: Context<AppEnv>, name: string, version?: string) => {
    if (!modelReady(name, version, d)) throw new AppError("MODEL_NOT_LOADED", `${modelRef(name, version)} is not ready`);
    return c.json({ name, ready: true }, 200);
  };
  read.openapi(r.readyRoutes.plain, (c) => ready(c, c.req.valid("param").name));
  read.openapi(r.readyRoutes.versioned, (c) => ready(c, c.req.valid("param").name, c.req.valid("param").version));

  const runInfer = (c: Context<AppEnv>) => serveInference(c, d, c.req.param("name")!, c.req.param("version"));
  inference.doc(r.inferRouteDoc);
  inference.doc(r.inferVersionRouteDoc);
  inference.post("/v2/models/:name/infer", runInfer);
  inference.post("/v2/models/:name/versions/:version/infer", runInfer);

  // `{"ready": true}` keeps the serving versions.
  repository.openapi(r.repositoryIndexRoute, async (c) => c.json(repositoryIndex((await optionalJson(c, RepositoryIndexBody)).ready === true, d), 200));

  // Triton's clients expect these to answer when the work is done, not with a job.
  const runToEnd = async (c: Context<AppEnv>, kind: "load" | "unload") => {
    const { parameters } = await optionalJson(c, RepositoryActionBody);
    // A big model's load can outlast the listener's idle timeout (MODELD_LOAD_TIMEOUT_MS is 120 s).
    c.env?.awaitingWork?.();
    await runRepositoryAction(kind, c.req.param("name")!, parameters, c.get("principal").sub, d);
    return c.json({}, 200);
  };
  repository.openapi(r.repositoryLoadRoute, (c) => runToEnd(c, "load") as never);
  repository.openapi(r.repositoryUnloadRoute, (c) => runToEnd(c, "unload") as never);

  // Registering a region opens memory of this host to inference callers: admin only, and audited.
  repository.openapi(r.shmStatusRoutes.all, (c) => c.json(d.shm.status(), 200));
  repository.openapi(r.shmStatusRoutes.one, (c) => c.json(d.shm.status(c.req.valid("param").region), 200));
  repository.openapi(r.shmRegisterRoute, async (c) => {
    const { key, offset, byte_size } = await optionalJson(c, ShmRegisterBody);
    await d.shm.register(c.req.valid("param").region, key, offset, byte_size);
    return c.json({}, 200);
  });
  repository.openapi(r.shmUnregisterRoutes.all, async (c) => (await d.shm.unregister(), c.json({}, 200)));
  repository.openapi(r.shmUnregisterRoutes.one, async (c) => (await d.shm.unregister(c.req.valid("param").region), c.json({}, 200)));
  repository.openapi(r.cudaShmRoutes.status, (c) => c.json([], 200));
  repository.openapi(r.cudaShmRoutes.register, () => {
    throw cudaSharedMemoryRefused();
  });
  repository.openapi(r.cudaShmRoutes.unregister, (c) => c.json({}, 200));
}
