import { createRoute, z } from "@hono/zod-openapi";
import { Hono, type Context } from "hono";
import type { Deps } from "../context";
import { AppError } from "../errors";
import type { AppEnv } from "./env";
import { errorResponse } from "./errors";
import type { PolicyRouter } from "./policy";
import { errorResponses } from "./schemas";

export const metricsRoute = createRoute({
  method: "get",
  path: "/metrics",
  tags: ["metrics"],
  security: [{ bearerAuth: [] }],
  summary: "Prometheus metrics (metrics or admin role, or open with MODELD_METRICS_PUBLIC=true)",
  description:
    "The text exposition format. Triton's names where Triton has one (`nv_inference_*`, labelled `model` and `version`), modeld's own `modeld_*`, and process metrics. MODELD_METRICS_PORT serves the same without auth on a second listener, as Triton does on 8002.",
  responses: {
    200: { description: "Metrics", content: { "text/plain": { schema: z.string() } } },
    ...errorResponses(401, 403),
  },
});

export async function metricsResponse(c: Context<AppEnv>, d: Pick<Deps, "metrics">): Promise<Response> {
  const { contentType, text } = await d.metrics.scrape();
  return c.body(text, 200, { "Content-Type": contentType });
}

export function mountMetricsRoute(router: PolicyRouter, d: Deps): void {
  router.openapi(metricsRoute, (c) => metricsResponse(c, d) as never);
}

/** The MODELD_METRICS_PORT listener: /metrics alone, without auth, for a scraper on a trusted network. */
export function createMetricsApp(d: Pick<Deps, "metrics">): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get("/metrics", (c) => metricsResponse(c, d));
  app.notFound((c) => errorResponse(c, new AppError("NOT_FOUND", "only GET /metrics is served on this port")));
  return app;
}
