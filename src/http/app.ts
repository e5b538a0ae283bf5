import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { requestId } from "hono/request-id";
import type { TokenVerifier } from "../auth";
import type { Deps } from "../context";
import { AppError } from "../errors";
import { mountAuditRoutes } from "./audit";
import { authenticate, inferenceAccess, requireRole } from "./auth";
import { mountDocs } from "./docs";
import type { AppEnv } from "./env";
import { errorResponse, onError, validationError } from "./errors";
import { mountEventRoutes } from "./events.handlers";
import { mountJobRoutes } from "./jobs.handlers";
import { mountModelRoutes } from "./models.handlers";
import { policyRouter, type Policy, type PolicyRouter } from "./policy";
import { mountMetricsRoute } from "./metrics.handlers";
import { mountPredictRoutes } from "./predict.handlers";
import { mountV2Routes } from "./v2.handlers";

export const VERSION = "0.1.0";

/** /api/v1: reads for any valid token, audited admin changes, and inference. */
export interface ApiRouters {
  read: PolicyRouter;
  admin: PolicyRouter;
  predict: PolicyRouter;
}
/** /v2: open health, reads and inference under the inference policy, the admin-only repository. */
export interface V2Routers {
  open: PolicyRouter;
  read: PolicyRouter;
  infer: PolicyRouter;
  repository: PolicyRouter;
}
/** Admin JSON bodies are tiny; only inference carries tensors. */
const ADMIN_BODY_LIMIT = 1024 * 1024;

const healthRoute = createRoute({
  method: "get",
  path: "/health",
  tags: ["health"],
  summary: "Liveness of the process (open); see also /v2/health/ready",
  responses: {
    200: {
      description: "Up; `draining` during a graceful shutdown",
      content: { "application/json": { schema: z.object({ status: z.enum(["ok", "draining"]), version: z.string() }) } },
    },
  },
});

export interface AppOptions {
  /** True during a graceful shutdown: readiness answers 503. */
  isDraining?: () => boolean;
  /** False until the models MODELD_LOAD_ON_START names serve: readiness answers 503. */
  isReady?: () => boolean;
}

export function createApp(d: Deps, verify: TokenVerifier, opts: AppOptions = {}): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw validationError(result.error);
    },
  });

  app.use(requestId({ limitLength: 128 }));
  app.use(async (c, next) => {
    const log = d.log.child({ requestId: c.get("requestId") });
    c.set("log", log);
    const started = performance.now();
    await next();
    // The template of the route that answered; "/*" when none did.
    d.metrics.countRequest(c.req.routePath, c.res.status);
    if (log.enabled("debug")) log.debug("request", { method: c.req.method, path: c.req.path, status: c.res.status, ms: +(performance.now() - started).toFixed(2) });
  });
  app.onError(onError);
  const noRoute = (c: Context<AppEnv>) => errorResponse(c, new AppError("NOT_FOUND", `no route ${c.req.method} ${c.req.path}`));
  app.notFound(noRoute);

  app.openapi(healthRoute, (c) => c.json({ status: opts.isDraining?.() ? ("draining" as const) : ("ok" as const), version: VERSION }, 200));

  const strict = authenticate(verify);
  const inference = inferenceAccess(d.config.auth, verify);
  const adminOnly = [strict, requireRole(d.config.auth, "admin")];
  const tensors = d.config.maxBodyBytes;
  const router = (errors: Policy["errors"], access: Policy["access"], extra: Partial<Policy> = {}) =>
    policyRouter(app, { errors, access, maxBodyBytes: ADMIN_BODY_LIMIT, ...extra });
  const api: ApiRouters = {
    read: router("api", [strict]),
    admin: router("api", adminOnly, { audit: d.audit }),
    predict: router("api", inference, { maxBodyBytes: tensors }),
  };
  const v2: V2Routers = {
    open: router("protocol", []),
    read: router("protocol", inference),
    infer: router("protocol", inference, { maxBodyBytes: tensors }),
    repository: router("protocol", adminOnly, { audit: d.audit }),
  };
  mountModelRoutes(api, d);
  mountJobRoutes(api, d, opts);
  mountEventRoutes(api, d, opts);
  mountAuditRoutes(api, d);
  mountPredictRoutes(api, d);
  mountV2Routes(v2, d, { version: VERSION, ...opts });
  // Unknown /v2 paths answer in the protocol's shape, after every real route had its chance.
  v2.open.fallback("/v2/*", noRoute);

  mountMetricsRoute(router("api", d.config.metrics.public ? [] : [strict, requireRole(d.config.auth, "metrics")]), d);

  mountDocs(app, { title: "modeld", version: VERSION });
  return app;
}
