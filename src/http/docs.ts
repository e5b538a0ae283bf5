// The Scalar page, with its script served from the binary itself: GPU hosts
// are often offline, and the default page loads the script from a CDN.
import type { OpenAPIHono } from "@hono/zod-openapi";
import { Scalar } from "@scalar/hono-api-reference";
import { readFileSync } from "node:fs";
import scalarScript from "../../node_modules/@scalar/api-reference/dist/browser/standalone.js" with { type: "file" };
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
    info: {
      title: info.title,
      version: info.version,
      description:
        "Register ONNX models, load and unload them through durable jobs, and serve inference over the Open Inference Protocol (KServe v2). Errors on /api/v1 share one shape: `{\"error\":{\"code\",\"message\",\"requestId\"}}`.",
    },
  });
  let script: Uint8Array | undefined;
  app.get(SCALAR_SCRIPT_PATH, (c) => {
    script ??= readFileSync(scalarScript);
    return c.body(script as Uint8Array<ArrayBuffer>, 200, {
      "Content-Type": "application/javascript; charset=utf-8",
      "Cache-Control": "public, max-age=86400",
    });
  });
  app.get("/docs", Scalar({ url: "/openapi.json", cdn: SCALAR_SCRIPT_PATH, pageTitle: `${info.title} API` }));
}
