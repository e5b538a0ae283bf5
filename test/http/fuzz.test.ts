// Property-based requests built from the OpenAPI document, against every
// route, with and without auth: nothing may answer 5xx (other than the
// documented 503s) or hang.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fc from "fast-check";
import type { Service } from "../../src/server";
import { affineModel } from "../fixtures/onnx-builder";
import { cleanup, startTestService, testEnv, token, writeModel, type TestEnv } from "../helpers";

let t: TestEnv;
let svc: Service;
let ops: { method: string; path: string; params: string[]; query: string[]; hasBody: boolean }[];
let tokens: (string | null)[];

beforeAll(async () => {
  t = testEnv({ MODELD_LOAD_TIMEOUT_MS: "5000" });
  writeModel(t.modelDir, "demo.onnx", affineModel());
  svc = await startTestService(t);
  const doc = (await (await svc.app.request("/openapi.json")).json()) as { paths: Record<string, Record<string, any>> };
  ops = Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => ({
      method: method.toUpperCase(),
      path,
      params: [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!),
      query: (op.parameters ?? []).filter((p: any) => p.in === "query").map((p: any) => p.name),
      hasBody: Boolean(op.requestBody),
    })),
  );
  tokens = [null, await token(), await token({ role: "infer" }), await token({ role: "nobody" }), "garbage.token.value"];
});
afterAll(async () => {
  await svc.close();
  cleanup(t);
});

const segment = fc.oneof(fc.constantFrom("demo", "nope", "1", "job_x", "", "..", "%00", "a".repeat(300)), fc.string({ maxLength: 40 }));
const value = fc.oneof(fc.constantFrom("true", "false", "0", "-1", "1e309", "NaN", "", "60", "x"), fc.string({ maxLength: 20 }));
const body = fc.oneof(
  fc.constant(undefined),
  fc.json({ maxDepth: 3 }),
  fc.record({ id: fc.string(), path: fc.string() }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
  fc.record({
    inputs: fc.array(
      fc.record({ name: fc.constantFrom("x", "y", ""), datatype: fc.constantFrom("FP32", "INT64", "BYTES", "X"), shape: fc.array(fc.integer({ min: -2, max: 5 }), { maxLength: 3 }), data: fc.array(fc.oneof(fc.double(), fc.string(), fc.boolean()), { maxLength: 8 }) }, { requiredKeys: [] }),
      { maxLength: 3 },
    ),
  }).map((o) => JSON.stringify(o)),
  fc.string({ maxLength: 200 }),
);

test("random requests to every documented route never answer 5xx or hang", async () => {
  expect(ops.length).toBeGreaterThan(20);
  const seen = new Set<string>();
  await fc.assert(
    fc.asyncProperty(
      fc.nat({ max: 10_000 }),
      fc.array(segment, { minLength: 4, maxLength: 4 }),
      fc.dictionary(fc.constantFrom("activate", "force", "wait", "limit", "before", "state", "kind", "modelId", "zzz"), value, { maxKeys: 3 }),
      body,
      fc.nat({ max: tokens.length - 1 }),
      async (pick, segs, query, payload, tok) => {
        const op = ops[pick % ops.length]!;
        let path = op.path;
        op.params.forEach((p, i) => (path = path.replace(`{${p}}`, encodeURIComponent(segs[i]!))));
        const qs = new URLSearchParams(query).toString();
        const headers: Record<string, string> = {};
        if (tokens[tok]) headers.authorization = `Bearer ${tokens[tok]}`;
        if (payload !== undefined) headers["content-type"] = "application/json";
        // Long-polls are bounded by the wait parameter (≤ 60 s); keep fuzzing fast.
        const url = `${path}${qs ? `?${qs.replace(/wait=[^&]*/, "wait=0")}` : ""}`;
        const res = await Promise.race([
          svc.app.request(url, { method: op.method, headers, body: op.method === "GET" ? undefined : payload }),
          Bun.sleep(10_000).then(() => null),
        ]);
        expect({ url, hung: res === null }).toEqual({ url, hung: false });
        const status = res!.status;
        seen.add(`${op.method} ${op.path} ${status}`);
        if (status >= 500) expect({ url, method: op.method, status }).toEqual({ url, method: op.method, status: 503 });
        // An event stream never ends by itself: take its headers, then hang up.
        if (res!.headers.get("content-type")?.startsWith("text/event-stream")) await res!.body?.cancel();
        else await res!.arrayBuffer();
      },
    ),
    { numRuns: 600, seed: 42 },
  );
  expect((await svc.app.request("/health")).status).toBe(200);
  expect(seen.size).toBeGreaterThan(40);
}, 180_000);
