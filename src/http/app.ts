import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { requestId } from "hono/request-id";
import type { TokenVerifier } from "../auth";
import type { Deps } from "../context";
import { AppError } from "../errors";
import { auditAdminActions, mountAuditRoutes } from "./audit";
import { authenticate } from "./auth";
import { mountDocs } from "./docs";
import type { AppEnv } from "./env";
import { errorResponse, onError, validationError } from "./errors";
import { mountEventRoutes } from "./events.handlers";
import { mountJobRoutes } from "./jobs.handlers";
import { mountModelRoutes } from "./models.handlers";
import { mountPredictRoutes, PREDICT_PATH } from "./predict.handlers";
import { mountV2Routes } from "./v2.handlers";

export const VERSION = "0.1.0";
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

export function createApp(d: Deps, verify: TokenVerifier, opts: { isDraining?: () => boolean } = {}): OpenAPIHono<AppEnv> {
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
    log.debug("request", { method: c.req.method, path: c.req.path, status: c.res.status, ms: +(performance.now() - started).toFixed(2) });
  });
  app.onError(onError);
  app.notFound((c) => errorResponse(c, new AppError("NOT_FOUND", `no route ${c.req.method} ${c.req.path}`)));

  app.openapi(healthRoute, (c) => c.json({ status: opts.isDraining?.() ? ("draining" as const) : ("ok" as const), version: VERSION }, 200));

  const limit = (maxSize: number) =>
    bodyLimit({
      maxSize,
      onError: () => {
        throw new AppError("PAYLOAD_TOO_LARGE", `request body exceeds ${maxSize} bytes`);
      },
    });
  const adminLimit = limit(ADMIN_BODY_LIMIT);
  const tensorLimit = limit(d.config.maxBodyBytes);
  const carriesTensors = (path: string) => PREDICT_PATH.test(path) || /^\/v2\/models\/.+\/infer$/.test(path);
  const limitByRoute: MiddlewareHandler<AppEnv> = (c, next) => (carriesTensors(c.req.path) ? tensorLimit(c, next) : adminLimit(c, next));
  app.use("/api/v1/*", limitByRoute);
  app.use("/v2/*", limitByRoute);

  app.use(auditAdminActions(d.audit));
  // Predict routes authenticate themselves: MODELD_PUBLIC_INFERENCE may open them.
  const strict = authenticate(verify);
  app.use("/api/v1/*", (c, next) => (PREDICT_PATH.test(c.req.path) ? next() : strict(c, next)));
  mountModelRoutes(app, d);
  mountJobRoutes(app, d);
  mountEventRoutes(app, d);
  mountAuditRoutes(app, d);
  mountPredictRoutes(app, d, verify);
  mountV2Routes(app, d, verify, { version: VERSION, isDraining: opts.isDraining });

  mountDocs(app, { title: "modeld", version: VERSION });
  return app;
}
