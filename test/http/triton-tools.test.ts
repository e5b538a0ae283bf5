// The Triton tools a user already runs: the model configuration and statistics
// extensions as perf_analyzer and tritonclient parse them, Prometheus metrics
// on Triton's names, and the request bodies and encodings tritonclient sends.
// The rules checked here are read from perf_analyzer's model_parser.cc and
// triton_client_backend.cc, and tritonclient's http/_client.py.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { deflateSync, gzipSync } from "node:zlib";
import parsePrometheus from "parse-prometheus-text-format";
import { affineModel, identityModel } from "../fixtures/onnx-builder";
import { startBinary } from "../fixtures/binary";
import { cleanup, testEnv, token, useService, writeModel } from "../helpers";

const svc = useService({}, (t) => {
  writeModel(t.modelDir, "batched.onnx", identityModel("float32", ["batch", 3]));
  writeModel(t.modelDir, "fixed.onnx", identityModel("float32", [2, 3]));
  writeModel(t.modelDir, "affine.onnx", affineModel());
});

const load = async (id: string) => svc.api.waitJob((await svc.api.json("POST", `/api/v1/models/${id}/load?activate=false`)).body.id);
const affineBody = (k: number) => ({ inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [k, 2, 3, 4] }] });

/** Every number in a stats or config document, wherever it sits. */
function numbers(value: unknown, path = "$"): { path: string; n: number }[] {
  if (typeof value === "number") return [{ path, n: value }];
  if (Array.isArray(value)) return value.flatMap((v, i) => numbers(v, `${path}[${i}]`));
  if (value && typeof value === "object") return Object.entries(value).flatMap(([k, v]) => numbers(v, `${path}.${k}`));
  return [];
}

/** perf_analyzer's ModelParser::InitTriton, as rules over the metadata and config it reads. */
function checkAsPerfAnalyzer(metadata: any, config: any) {
  expect(typeof config.name).toBe("string");
  expect(Number.isInteger(config.max_batch_size)).toBe(true);
  // It skips the first metadata dim when max_batch_size > 0, and finds each config input in the metadata.
  const skip = config.max_batch_size > 0 ? 1 : 0;
  for (const side of ["input", "output"] as const) {
    const meta = metadata[`${side}s`];
    expect(config[side].map((t: any) => t.name)).toEqual(meta.map((t: any) => t.name));
    for (const t of config[side]) {
      const m = meta.find((x: any) => x.name === t.name);
      expect(t.dims).toEqual(m.shape.slice(skip));
      expect(t.data_type).toBe(`TYPE_${m.datatype === "BYTES" ? "STRING" : m.datatype}`);
      expect(t.is_shape_tensor).toBe(false);
    }
  }
  // The scheduler type comes from the presence of dynamic_batching.
  expect("dynamic_batching" in config).toBe(config.max_batch_size > 0);
  expect(config.model_transaction_policy).toBeUndefined();
  for (const { path, n } of numbers(config)) expect({ path, integer: Number.isInteger(n) }).toEqual({ path, integer: true });
}

/** TritonClientBackend::ParseStatistics reads every one of these with GetString or GetUint64. */
function checkStatsAsPerfAnalyzer(doc: any) {
  expect(Array.isArray(doc.model_stats)).toBe(true);
  for (const s of doc.model_stats) {
    expect(typeof s.name).toBe("string");
    expect(s.version).toMatch(/^\d+$/);
    const uint64 = [s.inference_count, s.execution_count, s.last_inference];
    for (const k of ["success", "fail", "queue", "compute_input", "compute_infer", "compute_output", "cache_hit", "cache_miss"]) {
      uint64.push(s.inference_stats[k].count, s.inference_stats[k].ns);
    }
    for (const n of uint64) expect(Number.isSafeInteger(n) && n >= 0).toBe(true);
    for (const b of s.batch_stats) for (const { n } of numbers(b)) expect(Number.isSafeInteger(n) && n >= 0).toBe(true);
  }
}

describe("model configuration extension", () => {
  test("a model with a dynamic batch dimension and batching on: max_batch_size > 0, dims without the batch dimension", async () => {
    await svc.api.json("PATCH", "/api/v1/models/batched", { body: { batching: { maxBatchSize: 16, preferredBatchSizes: [4, 8] } } });
    await load("batched");
    const config = (await svc.api.json("GET", "/v2/models/batched/config")).body;
    const metadata = (await svc.api.json("GET", "/v2/models/batched")).body;
    checkAsPerfAnalyzer(metadata, config);
    expect(config).toMatchObject({
      name: "batched",
      platform: "onnxruntime_onnx",
      backend: "onnxruntime",
      max_batch_size: 16,
      input: [{ name: "in", data_type: "TYPE_FP32", dims: [3] }],
      dynamic_batching: { preferred_batch_size: [4, 8], max_queue_delay_microseconds: 0 },
      instance_group: [{ kind: "KIND_CPU", count: 1 }],
      version_policy: { specific: { versions: [1] } },
    });
    expect((await svc.api.json("GET", "/v2/models/batched/versions/1/config")).body).toEqual(config);
    // Settings take effect at the next load: until then the config describes the session that serves.
    await svc.api.json("PATCH", "/api/v1/models/batched", { body: { batching: null } });
    expect((await svc.api.json("GET", "/v2/models/batched/config")).body).toEqual(config);
  });

  test("without batching, or without a dynamic first dimension: max_batch_size 0 and full dims", async () => {
    for (const id of ["fixed", "affine"]) {
      if (id === "fixed") await svc.api.json("PATCH", "/api/v1/models/fixed", { body: { batching: { maxBatchSize: 16 } } });
      await load(id);
      const config = (await svc.api.json("GET", `/v2/models/${id}/config`)).body;
      checkAsPerfAnalyzer((await svc.api.json("GET", `/v2/models/${id}`)).body, config);
      expect(config.max_batch_size).toBe(0);
      expect(config.dynamic_batching).toBeUndefined();
    }
    expect((await svc.api.json("GET", "/v2/models/fixed/config")).body.input[0].dims).toEqual([2, 3]);
  });

  test("errors: unknown model or version 404, never loaded 400, no token 401, in the protocol's shape", async () => {
    expect((await svc.api.json("GET", "/v2/models/ghost/config")).status).toBe(404);
    expect((await svc.api.json("GET", "/v2/models/affine/versions/9/config")).status).toBe(404);
    writeModel(svc.t.modelDir, "later.onnx", affineModel());
    await svc.api.json("POST", "/api/v1/models/rescan");
    const never = await svc.api.json("GET", "/v2/models/later/config");
    expect(never.status).toBe(400);
    expect(typeof never.body.error).toBe("string");
    expect((await svc.api.json("GET", "/v2/models/affine/config", { token: null })).status).toBe(401);
  });
});

describe("statistics extension", () => {
  test("counters rise by exactly the requests sent; failures count under fail; every counter is an integer", async () => {
    await load("affine");
    const infer = await token({ role: "infer" });
    const stats = async () => (await svc.api.json("GET", "/v2/models/affine/stats", { token: infer })).body;
    const before = (await stats()).model_stats[0];
    for (let k = 0; k < 7; k++) expect((await svc.api.json("POST", "/v2/models/affine/infer", { token: infer, body: affineBody(k) })).status).toBe(200);
    const bad = { inputs: [{ name: "x", datatype: "FP32", shape: [1, 3], data: [1, 2, 3] }] };
    for (let k = 0; k < 2; k++) expect((await svc.api.json("POST", "/v2/models/affine/infer", { token: infer, body: bad })).status).toBe(400);
    const doc = await stats();
    checkStatsAsPerfAnalyzer(doc);
    const after = doc.model_stats[0];
    expect(after.name).toBe("affine");
    expect(after.version).toBe("1");
    const rose = (k: string) => after.inference_stats[k].count - before.inference_stats[k].count;
    // perf_analyzer finds the version that served its requests by the rise of queue.count.
    expect({ success: rose("success"), queue: rose("queue"), infer: rose("compute_infer"), fail: rose("fail") }).toEqual({ success: 7, queue: 7, infer: 7, fail: 2 });
    expect(after.inference_count - before.inference_count).toBe(7);
    expect(after.execution_count - before.execution_count).toBe(7);
    expect(after.inference_stats.success.ns).toBeGreaterThan(before.inference_stats.success.ns);
    expect(after.last_inference).toBeGreaterThanOrEqual(Date.now() - 60_000);
    expect(after.batch_stats).toContainEqual(expect.objectContaining({ batch_size: 1 }));
    expect((await svc.api.json("GET", "/v2/models/affine/versions/1/stats", { token: infer })).body.model_stats).toHaveLength(1);
  });

  test("compute_infer counts executions, not the wait behind them: on one session thread they add up to at most the wall time", async () => {
    await load("affine");
    const infer = await token({ role: "infer" });
    const inferNs = async () => (await svc.api.json("GET", "/v2/models/affine/stats", { token: infer })).body.model_stats[0].inference_stats.compute_infer;
    const before = await inferNs();
    const started = performance.now();
    const burst = await Promise.all(Array.from({ length: 64 }, (_, k) => svc.api.json("POST", "/v2/models/affine/infer", { token: infer, body: affineBody(k) })));
    const wallNs = (performance.now() - started) * 1e6;
    expect(burst.every((r) => r.status === 200)).toBe(true);
    const after = await inferNs();
    expect(after.count - before.count).toBe(64);
    expect(after.ns - before.ns).toBeGreaterThan(0);
    expect(after.ns - before.ns).toBeLessThanOrEqual(wallNs);
  });

  test("/v2/models/stats lists every registered model, and is never read as a model named stats", async () => {
    const doc = (await svc.api.json("GET", "/v2/models/stats")).body;
    checkStatsAsPerfAnalyzer(doc);
    const names = new Set(doc.model_stats.map((s: any) => s.name));
    for (const m of (await svc.api.json("GET", "/api/v1/models")).body.models) expect(names.has(m.id)).toBe(true);
    expect((await svc.api.json("GET", "/v2/models/ghost/stats")).status).toBe(404);
    expect((await svc.api.json("GET", "/v2/models/affine/versions/7/stats")).status).toBe(404);
  });

  test("server metadata lists both extensions", async () => {
    expect((await svc.api.json("GET", "/v2")).body.extensions).toEqual(expect.arrayContaining(["model_configuration", "statistics"]));
  });
});

describe("what tritonclient sends", () => {
  test("load and unload bodies are accepted and answer 200; a config override or file upload is refused with 400", async () => {
    expect((await svc.api.json("POST", "/v2/repository/models/affine/load", { body: {} })).status).toBe(200);
    expect((await svc.api.json("POST", "/v2/repository/models/affine/unload", { body: { parameters: { unload_dependents: false } } })).status).toBe(200);
    const override = await svc.api.json("POST", "/v2/repository/models/affine/load", { body: { parameters: { config: '{"max_batch_size":8}' } } });
    expect(override.status).toBe(400);
    expect(override.body.error).toContain("PATCH /api/v1/models/{id}");
    const upload = await svc.api.json("POST", "/v2/repository/models/affine/load", { body: { parameters: { "file:1/model.onnx": "AAAA" } } });
    expect(upload.status).toBe(400);
    // No Content-Type, as tritonclient sends it.
    const bare = await svc.svc.app.request("/v2/repository/models/affine/load", { method: "POST", headers: { authorization: `Bearer ${await token()}` }, body: "{}" });
    expect(bare.status).toBe(200);
  });

  test("class_count (the classification extension) is refused with a clear 400", async () => {
    await load("affine");
    const body = { ...affineBody(1), outputs: [{ name: "y", parameters: { classification: 2 } }] };
    const res = await svc.api.json("POST", "/v2/models/affine/infer", { body });
    expect(res.status).toBe(400);
    expect(res.body.error).toContain("classification");
  });

  test("gzip and deflate request bodies are decoded; other encodings are 415; a bomb past the limit is 413", async () => {
    await load("affine");
    const admin = await token();
    const send = (encoding: string, body: Uint8Array) =>
      svc.svc.app.request("/v2/models/affine/infer", { method: "POST", headers: { authorization: `Bearer ${admin}`, "content-encoding": encoding }, body });
    const json = new TextEncoder().encode(JSON.stringify(affineBody(5)));
    for (const [encoding, bytes] of [["gzip", gzipSync(json)], ["deflate", deflateSync(json)], ["identity", json]] as const) {
      const res = await send(encoding, bytes);
      expect({ encoding, status: res.status }).toEqual({ encoding, status: 200 });
      expect(((await res.json()) as any).outputs[0].data).toEqual([11, 5, 7, 9]);
    }
    const br = await send("br", json);
    expect(br.status).toBe(415);
    expect(((await br.json()) as any).error).toContain("br");
    expect((await send("gzip", json)).status).toBe(400); // not gzip at all
    // A read with the header has no body to decode: answered as usual, never a 5xx.
    expect((await svc.svc.app.request("/v2/models/affine", { headers: { authorization: `Bearer ${admin}`, "content-encoding": "gzip" } })).status).toBe(200);
    const bomb = gzipSync(new Uint8Array(svc.svc.deps.config.maxBodyBytes + 1));
    expect(bomb.byteLength).toBeLessThan(1024 * 1024);
    expect((await send("gzip", bomb)).status).toBe(413);
  });
});

describe("Prometheus metrics", () => {
  test("/metrics parses as the text format, on Triton's names, and its counters match the stats", async () => {
    await load("affine");
    for (let k = 0; k < 3; k++) await svc.api.json("POST", "/v2/models/affine/infer", { body: affineBody(k) });
    const res = await svc.svc.app.request("/metrics", { headers: { authorization: `Bearer ${await token()}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain");
    const families = parsePrometheus(await res.text());
    const family = (name: string) => families.find((f) => f.name === name);
    const value = (name: string, labels: Record<string, string>) =>
      Number(family(name)?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))?.value);
    const stats = (await svc.api.json("GET", "/v2/models/affine/versions/1/stats")).body.model_stats[0];
    const affine = { model: "affine", version: "1" };
    expect(family("nv_inference_request_success")?.type).toBe("COUNTER");
    expect(value("nv_inference_request_success", affine)).toBe(stats.inference_stats.success.count);
    expect(value("nv_inference_request_failure", affine)).toBe(stats.inference_stats.fail.count);
    expect(value("nv_inference_count", affine)).toBe(stats.inference_count);
    expect(value("nv_inference_exec_count", affine)).toBe(stats.execution_count);
    expect(value("nv_inference_queue_duration_us", affine)).toBe(Math.floor(stats.inference_stats.queue.ns / 1000));
    expect(value("nv_inference_compute_infer_duration_us", affine)).toBe(Math.floor(stats.inference_stats.compute_infer.ns / 1000));
    for (const name of ["nv_inference_request_duration_us", "nv_inference_compute_input_duration_us", "nv_inference_compute_output_duration_us"]) {
      expect(value(name, affine)).toBeGreaterThan(0);
    }
    expect(value("modeld_model_state", { ...affine, state: "loaded" })).toBe(1);
    expect(value("modeld_model_memory_bytes", affine)).toBeGreaterThan(0);
    expect(value("modeld_jobs_total", { kind: "load", state: "completed" })).toBeGreaterThanOrEqual(1);
    expect(family("modeld_job_duration_seconds")?.type).toBe("HISTOGRAM");
    expect(family("modeld_evictions_total")?.metrics.map((m) => m.labels?.reason).sort()).toEqual(["evicted", "idle"]);
    // Routes by template, never by raw path.
    const routes = family("modeld_http_requests_total")!.metrics.map((m) => m.labels!.route ?? "");
    expect(routes).toContain("/v2/models/:name/infer");
    expect(routes.some((r) => r.includes("affine"))).toBe(false);
    expect(family("process_cpu_seconds_total")).toBeDefined();
  });

  test("auth: a token with the metrics or admin role; 401 without one, 403 for other roles", async () => {
    const call = async (tok: string | null) => (await svc.svc.app.request("/metrics", { headers: tok ? { authorization: `Bearer ${tok}` } : {} })).status;
    expect(await call(null)).toBe(401);
    expect(await call(await token({ role: "infer" }))).toBe(403);
    expect(await call(await token({ role: "metrics" }))).toBe(200);
    expect(await call(await token({ role: "admin" }))).toBe(200);
  });

  test("MODELD_METRICS_PUBLIC opens /metrics; MODELD_METRICS_PORT serves it alone, without auth, on a second listener", async () => {
    const t = testEnv({ MODELD_METRICS_PUBLIC: "true", MODELD_METRICS_PORT: "0" });
    const server = await startBinary([process.execPath, join(import.meta.dir, "../../src/main.ts"), "serve"], t.env, t.root);
    try {
      expect((await fetch(`${server.url}/metrics`)).status).toBe(200);
      const port = /"metricsPort":(\d+)/.exec(server.logs())![1];
      const side = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(side.status).toBe(200);
      expect(parsePrometheus(await side.text()).some((f) => f.name === "modeld_jobs_total")).toBe(true);
      expect((await fetch(`http://127.0.0.1:${port}/api/v1/models`)).status).toBe(404);
    } finally {
      await server.stop();
      cleanup(t);
    }
  });
});

test("routes take auth, body limit, audit and error shape from their policy router, never from a path pattern", () => {
  const dir = join(import.meta.dir, "../../src/http");
  for (const file of readdirSync(dir)) {
    const src = readFileSync(join(dir, file), "utf8");
    expect({ file, pathTests: src.match(/\.test\(c\.req\.path\)|req\.path\.startsWith|isProtocolPath|PREDICT_PATH/g) ?? [] }).toEqual({ file, pathTests: [] });
  }
});
