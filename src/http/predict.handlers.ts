// /api/v1 convenience for single-model deployments: the same tensor JSON as
// /v2 infer, for the active model or a named one, with /api/v1's error shape.
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { Deps } from "../context";
import { activeModelId } from "../services/models.service";
import type { ApiRouters } from "./app";
import type { AppEnv } from "./env";
import { serveInference } from "./infer-body";
import { errorResponses, ModelId } from "./schemas";
import { InferRequestSchema, InferResponse } from "./v2.schemas";

const doc = {
  method: "post" as const,
  tags: ["inference"],
  security: [{ bearerAuth: [] }],
  request: { body: { required: true, content: { "application/json": { schema: InferRequestSchema } } } },
  responses: {
    200: { description: "The outputs", content: { "application/json": { schema: InferResponse } } },
    ...errorResponses(400, 401, 403, 404, 409, 413, 503, 507),
  },
};

export function mountPredictRoutes({ predict }: ApiRouters, d: Deps): void {
  const run = (c: Context<AppEnv>, modelId: string) => serveInference(c, d, modelId, undefined);

  predict.doc({ ...doc, path: "/api/v1/predict", summary: "Run the active model (infer role)" });
  predict.post("/api/v1/predict", (c) => run(c, activeModelId(d)));

  predict.doc({
    ...doc,
    path: "/api/v1/models/{id}/predict",
    summary: "Run a named model (infer role)",
    request: { ...doc.request, params: z.object({ id: ModelId }) },
  });
  // infer() tells an unknown model (404) from one not loaded, without a registry read per request.
  predict.post("/api/v1/models/:id/predict", (c) => run(c, c.req.param("id")!));
}
