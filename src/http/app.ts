import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { requestId } from "hono/request-id";
import type { TokenVerifier } from "../auth";
import type { Deps } from "../context";
import { AppError } from "../errors";
import { authenticate } from "./auth";
import { mountDocs } from "./docs";
import type { AppEnv } from "./env";
import { errorResponse, onError, validationError } from "./errors";
import { mountJobRoutes } from "./jobs.handlers";
import { mountModelRoutes } from "./models.handlers";

export const VERSION = "0.1.0";
/** Admin JSON bodies are tiny; only inference carries tensors. */
const ADMIN_BODY_LIMIT = 1024 * 1024;

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

  app.get("/health", (c) => c.json({ status: opts.isDraining?.() ? "draining" : "ok", version: VERSION }));

  app.use("/api/v1/*", bodyLimit({ maxSize: ADMIN_BODY_LIMIT, onError: () => {
    throw new AppError("PAYLOAD_TOO_LARGE", `request body exceeds ${ADMIN_BODY_LIMIT} bytes`);
  } }));
  app.use("/api/v1/*", authenticate(verify));
  mountModelRoutes(app, d);
  mountJobRoutes(app, d);

  mountDocs(app, { title: "modeld", version: VERSION });
  return app;
}
