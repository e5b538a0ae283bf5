// /api/v1 convenience for single-model deployments: the same tensor JSON as
// /v2 infer, for the active model or a named one, with /api/v1's error shape.
import type { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { TokenVerifier } from "../auth";
import type { Deps } from "../context";
import { infer } from "../services/inference.service";
import { activeModelId } from "../services/models.service";
import { inferenceAccess } from "./auth";
import type { AppEnv } from "./env";
import { readInferRequest, writeInferResponse } from "./infer-body";
import { errorResponses, ModelId } from "./schemas";
import { InferRequestSchema, InferResponse } from "./v2.schemas";

export const PREDICT_PATH = /^\/api\/v1\/(predict|models\/[^/]+\/predict)$/;

const doc = {
  method: "post" as const,
  tags: ["inference"],
  security: [{ bearerAuth: [] }],
  request: { body: { required: true, content: { "application/json": { schema: InferRequestSchema } } } },
  responses: {
    200: { description: "The outputs", content: { "application/json": { schema: InferResponse } } },
    ...errorResponses(400, 401, 403, 404, 409, 413, 503),
  },
};

export function mountPredictRoutes(app: OpenAPIHono<AppEnv>, d: Deps, verify: TokenVerifier): void {
  const access = inferenceAccess(d.config.auth, verify);
  const run = async (c: Context<AppEnv>, modelId: string) => writeInferResponse(c, await infer(modelId, undefined, await readInferRequest(c), d, c.get("principal").sub));

  app.openAPIRegistry.registerPath({ ...doc, path: "/api/v1/predict", summary: "Run the active model (infer role)" });
  app.use("/api/v1/predict", ...access);
  app.post("/api/v1/predict", (c) => run(c, activeModelId(d)));

  app.openAPIRegistry.registerPath({
    ...doc,
    path: "/api/v1/models/{id}/predict",
    summary: "Run a named model (infer role)",
    request: { ...doc.request, params: z.object({ id: ModelId }) },
  });
  app.use("/api/v1/models/:id/predict", ...access);
  // infer() tells an unknown model (404) from one not loaded, without a registry read per request.
  app.post("/api/v1/models/:id/predict", (c) => run(c, c.req.param("id")!));
}
