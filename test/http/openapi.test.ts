import { expect, test } from "bun:test";
import { Validator } from "@seriousme/openapi-schema-validator";
import { useService } from "../helpers";

const f = useService();

test("the OpenAPI 3.1 document validates", async () => {
  const doc = (await f.api.json("GET", "/openapi.json", { token: null })).body;
  expect(doc.openapi).toBe("3.1.0");
  const result = await new Validator().validate(doc);
  expect(result.errors ?? []).toEqual([]);
  expect(result.valid).toBe(true);
  expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: "http", scheme: "bearer" });
});

test("every route is documented, with its error shape on every error response", async () => {
  const doc = (await f.api.json("GET", "/openapi.json", { token: null })).body;
  const documented = new Set<string>();
  for (const [path, ops] of Object.entries<Record<string, any>>(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      documented.add(`${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ":$1")}`);
      for (const [status, r] of Object.entries<any>(op.responses)) {
        const shape = path.startsWith("/v2") ? "ProtocolError" : "Error";
        // Readiness answers 503 with its own {ready:false} body, as probes expect.
        if (Number(status) >= 400 && path !== "/v2/health/ready") {
          expect({ path, status, ref: r.content["application/json"].schema.$ref }).toEqual({ path, status, ref: `#/components/schemas/${shape}` });
        }
      }
      if (path.startsWith("/api/v1") || path.startsWith("/v2/models")) expect(op.security).toEqual([{ bearerAuth: [] }]);
    }
  }
  const undocumented = new Set(["GET /openapi.json", "GET /docs", "GET /docs/scalar.js"]);
  const registered = [...new Set(f.svc.app.routes.filter((r) => r.method !== "ALL").map((r) => `${r.method} ${r.path}`))].filter(
    (r) => !undocumented.has(r),
  );
  expect(registered.length).toBeGreaterThan(20);
  for (const r of registered) expect({ route: r, documented: documented.has(r) }).toEqual({ route: r, documented: true });
});

test("the Scalar page loads its script from modeld, not a CDN", async () => {
  const html = await (await f.api.call("GET", "/docs", { token: null })).text();
  expect(html).toContain('src="/docs/scalar.js"');
  expect(html).not.toContain("cdn.jsdelivr.net");
  const js = await f.api.call("GET", "/docs/scalar.js", { token: null });
  expect(js.headers.get("content-type")).toContain("javascript");
  expect((await js.arrayBuffer()).byteLength).toBeGreaterThan(1_000_000);
});
