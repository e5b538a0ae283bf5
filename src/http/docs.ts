// The Scalar page, with its script served from the binary itself: GPU hosts
// are often offline, and the default page loads the script from a CDN.
import type { OpenAPIHono } from "@hono/zod-openapi";
import { Scalar } from "@scalar/hono-api-reference";
import { readFileSync } from "node:fs";
import { scalarScriptPath } from "../platform/assets";
import type { AppEnv } from "./env";

export const SCALAR_SCRIPT_PATH = "/docs/scalar.js";

export function mountDocs(app: OpenAPIHono<AppEnv>, info: { title: string; version: string }): void {
  app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description: "Mint one with `modeld token --sub NAME --role admin`.",
  });
  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    tags: [
      { name: "models", description: "The registry, and load/unload as jobs (202 Accepted)." },
      { name: "jobs", description: "Poll, list and cancel load and unload jobs." },
      { name: "events", description: "Live job and model changes as Server-Sent Events, resumable with Last-Event-ID." },
      { name: "inference", description: "Single-model convenience routes with /api/v1's error shape." },
      { name: "inference (v2)", description: "The Open Inference Protocol (KServe v2), JSON and binary tensors." },
      { name: "model repository (v2)", description: "Triton's repository extension, on the same job queue." },
      { name: "audit", description: "Who did what to which model, and how it ended." },
      { name: "metrics", description: "Prometheus metrics, on Triton's names where Triton has them." },
      { name: "health", description: "Open liveness; readiness is /v2/health/ready." },
    ],
    info: {
      title: info.title,
      version: info.version,
      description:
        "Register ONNX models, load and unload them through durable jobs, and serve inference over the Open Inference Protocol (KServe v2). Errors on /api/v1 share one shape: `{\"error\":{\"code\",\"message\",\"requestId\"}}`.",
    },
  });
  let script: Uint8Array | undefined;
  app.get(SCALAR_SCRIPT_PATH, (c) => {
    script ??= readFileSync(scalarScriptPath());
    return c.body(script as Uint8Array<ArrayBuffer>, 200, {
      "Content-Type": "application/javascript; charset=utf-8",
      "Cache-Control": "public, max-age=86400",
    });
  });
  // No web fonts and no AI agent: both would call Scalar's servers, which an offline host cannot reach.
  const config = { url: "/openapi.json", cdn: SCALAR_SCRIPT_PATH, pageTitle: `${info.title} API`, withDefaultFonts: false, agent: { disabled: true } };
  app.get("/docs", Scalar(config as Parameters<typeof Scalar>[0]));
}
