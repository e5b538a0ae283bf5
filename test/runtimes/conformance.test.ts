// The same behaviour on every runtime: this suite drives a real server over
// HTTP, started on the runtime named by RUNTIME_UNDER_TEST (bun by default,
// as part of `npm test`; `npm run test:node` and `npm run test:deno` run it on
// the others, from the bundle they run). It covers the seed API's lifecycle,
// auth, error shapes, JSON and binary inference, restart recovery, a swap
// under load, a session worker that dies, a batch held for its queue delay, the
// token CLI, and an external ONNX Runtime (MODELD_ORT_DIR).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as grpc from "@grpc/grpc-js";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { affineModel, matmulChainModel } from "../fixtures/onnx-builder";
import { startBinary, type RunningBinary } from "../fixtures/binary";
import { floats, grpcClient, healthCheck } from "../fixtures/grpc-client";
import { buildPortable, modeldCommand as command, type Runtime } from "../fixtures/runtimes";
import { cleanup, nestedJsonArray, testEnv, token, type TestEnv } from "../helpers";

const repo = join(import.meta.dir, "../..");
const RUNTIME = (process.env.RUNTIME_UNDER_TEST ?? "bun") as Runtime;
const modeldCommand = () => command(RUNTIME);

const modelDirLayout = (t: TestEnv, version: number, mul: number) => {
  mkdirSync(join(t.modelDir, "affine", String(version)), { recursive: true });
  writeFileSync(join(t.modelDir, "affine", String(version), "model.onnx"), affineModel(mul, 1));
};

async function start(t: TestEnv): Promise<RunningBinary> {
  const env = { ...t.env, PATH: `${process.env.PATH}` };
  return startBinary([...modeldCommand(), "serve"], env, repo, 60_000);
}

let t: TestEnv;
let server: RunningBinary;
let admin: string;

beforeAll(async () => {
  if (RUNTIME !== "bun") buildPortable();
  t = testEnv({ MODELD_RESTORE: "true", MODELD_GRPC_PORT: "0", MODELD_ALLOW_CLIENT_SHM: "true" });
  modelDirLayout(t, 1, 2);
  // A few ms per run: 40 queued requests keep the worker busy for a while.
  writeFileSync(join(t.modelDir, "slow.onnx"), matmulChainModel(1024, 160));
  writeFileSync(join(t.modelDir, "held.onnx"), affineModel(2, 1));
  server = await start(t);
  admin = await token();
}, 120_000);

afterAll(async () => {
  await server?.stop();
  if (t) cleanup(t);
});

async function call(method: string, path: string, opts: { token?: string | null; body?: unknown; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...opts.headers };
  const tok = opts.token === undefined ? admin : opts.token;
  if (tok) headers.authorization = `Bearer ${tok}`;
  if (opts.body !== undefined && !(opts.body instanceof Uint8Array)) headers["content-type"] ??= "application/json";
  const res = await fetch(server.url + path, {
    method,
    headers,
    body: opts.body === undefined || opts.body instanceof Uint8Array || typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body),
  });
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: res.status, body, headers: res.headers };
}

async function waitJob(id: string) {
  for (;;) {
    const { body } = await call("GET", `/api/v1/jobs/${id}?wait=10`);
    if (["completed", "failed", "cancelled"].includes(body.state)) return body;
  }
}

const x = { inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }] };

describe(`on ${RUNTIME}`, () => {
  test("lifecycle: load answers 202 with a job; the job completes; the model serves; unload releases it", async () => {
    const load = await call("POST", "/api/v1/models/affine/load");
    expect(load.status).toBe(202);
    expect(load.headers.get("location")).toBe(`/api/v1/jobs/${load.body.id}`);
    expect((await waitJob(load.body.id)).state).toBe("completed");
    expect((await call("GET", "/api/v1/models/affine")).body).toMatchObject({ state: "loaded", servingVersion: "1" });
    expect((await call("POST", "/v2/models/affine/infer", { body: x })).body.outputs[0].data).toEqual([3, 5, 7, 9]);
    const unload = await call("POST", "/api/v1/models/affine/unload");
    expect(unload.status).toBe(202);
    expect((await waitJob(unload.body.id)).state).toBe("completed");
    expect((await call("GET", "/api/v1/models/affine")).body.state).toBe("unloaded");
    expect((await call("POST", "/v2/models/affine/infer", { body: x })).status).toBe(400);
  });

  test("auth: no token or a bad one 401, a valid non-admin 403, with the error shapes of each API", async () => {
    const none = await call("POST", "/api/v1/models/affine/load", { token: null });
    expect(none.status).toBe(401);
    expect(none.body.error).toMatchObject({ code: "UNAUTHORIZED", requestId: expect.any(String) });
    expect(none.headers.get("www-authenticate")).toContain("Bearer");
    expect((await call("GET", "/api/v1/models", { token: "not.a.token" })).status).toBe(401);
    const infer = await token({ role: "infer" });
    expect((await call("POST", "/api/v1/models/affine/load", { token: infer })).body.error.code).toBe("FORBIDDEN");
    const v2 = await call("POST", "/v2/repository/models/affine/load", { token: infer });
    expect(v2.status).toBe(403);
    expect(typeof v2.body.error).toBe("string");
  });

  test("errors: malformed JSON, unknown model, bad tensor: clear 4xx in one shape per API", async () => {
    const bad = await call("POST", "/api/v1/models", { body: "{not json", headers: { "content-type": "application/json" } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("MALFORMED_JSON");
    expect((await call("POST", "/api/v1/models/ghost/load")).body.error.code).toBe("MODEL_NOT_FOUND");
    expect((await call("GET", "/v2/models/ghost")).status).toBe(404);
    await waitJob((await call("POST", "/api/v1/models/affine/load")).body.id);
    const shape = await call("POST", "/v2/models/affine/infer", { body: { inputs: [{ name: "x", datatype: "FP32", shape: [1, 3], data: [1, 2, 3] }] } });
    expect(shape.status).toBe(400);
    expect(shape.body.error).toContain("dimension");
  });

  test("a POST with a JSON type and no body at all, as `curl -X POST -H 'Content-Type: application/json'` sends it, is a POST without a body", async () => {
    // No Content-Length, no Transfer-Encoding: fetch() always frames a body, so the bytes are written by hand.
    const { hostname, port } = new URL(server.url);
    const head = [`POST /api/v1/models/affine/load HTTP/1.1`, `Host: ${hostname}`, `Authorization: Bearer ${admin}`, "Content-Type: application/json", "Connection: close", "", ""].join("\r\n");
    const answer = await new Promise<string>((resolve, reject) => {
      let text = "";
      const socket = connect(Number(port), hostname, () => socket.write(head));
      socket.on("data", (chunk) => (text += chunk.toString())).on("end", () => resolve(text)).on("error", reject);
    });
    expect(answer).toStartWith("HTTP/1.1 202");
    expect((await waitJob(JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4)).id)).state).toBe("completed");
  });

  test("inference: JSON and the binary tensor extension give the same answer", async () => {
    await waitJob((await call("POST", "/api/v1/models/affine/load")).body.id);
    const header = new TextEncoder().encode(JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], parameters: { binary_data_size: 16 } }], parameters: { binary_data_output: true } }));
    const data = new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer);
    const body = new Uint8Array(header.byteLength + data.byteLength);
    body.set(header);
    body.set(data, header.byteLength);
    const res = await fetch(`${server.url}/v2/models/affine/infer`, {
      method: "POST",
      headers: { authorization: `Bearer ${admin}`, "Inference-Header-Content-Length": String(header.byteLength), "content-type": "application/octet-stream" },
      body,
    });
    expect(res.status).toBe(200);
    const bytes = new Uint8Array(await res.arrayBuffer());
    const n = Number(res.headers.get("inference-header-content-length"));
    const json = JSON.parse(new TextDecoder().decode(bytes.subarray(0, n)));
    expect(json.outputs[0]).toMatchObject({ name: "y", datatype: "FP32", shape: [1, 4], parameters: { binary_data_size: 16 } });
    expect([...new Float32Array(bytes.slice(n).buffer)]).toEqual((await call("POST", "/v2/models/affine/infer", { body: x })).body.outputs[0].data);
  });

  test("system shared memory: an input read from a region, an output written to one (under Deno, a refusal naming --allow-all)", async () => {
    await waitJob((await call("POST", "/api/v1/models/affine/load")).body.id);
    const name = `modeld-conformance-${RUNTIME}-${process.pid}`;
    const object = join("/dev/shm", name);
    writeFileSync(object, Buffer.concat([Buffer.from(new Float32Array([1, 2, 3, 4]).buffer), Buffer.alloc(16)]));
    try {
      const registered = await call("POST", "/v2/systemsharedmemory/region/io/register", { body: { key: `/${name}`, byte_size: 32 } });
      if (RUNTIME === "deno") {
        // Deno opens nothing under /dev without --allow-all (denoland/deno#30979); the refusal says so.
        expect(registered.status).toBe(400);
        expect(registered.body.error).toContain("--allow-all");
        return;
      }
      expect(registered.status).toBe(200);
      const region = (offset: number) => ({ shared_memory_region: "io", shared_memory_offset: offset, shared_memory_byte_size: 16 });
      const answer = await call("POST", "/v2/models/affine/infer", {
        body: { inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], parameters: region(0) }], outputs: [{ name: "y", parameters: region(16) }] },
      });
      expect(answer.body.outputs).toEqual([{ name: "y", datatype: "FP32", shape: [1, 4], parameters: region(16) }]);
      expect([...new Float32Array(readFileSync(object).buffer.slice(16, 32))]).toEqual([3, 5, 7, 9]);
      expect((await call("POST", "/v2/systemsharedmemory/unregister")).status).toBe(200);
    } finally {
      rmSync(object, { force: true });
    }
  });

  test("a large JSON body, parsed in the codec thread, answers like a small one; one nested too deeply is refused alone", async () => {
    await waitJob((await call("POST", "/api/v1/models/affine/load")).body.id);
    const rows = 20_000; // a 200 kB body, above OFF_THREAD_JSON_BYTES
    const res = await call("POST", "/v2/models/affine/infer", { body: { inputs: [{ name: "x", datatype: "FP32", shape: [rows, 4], data: Array.from({ length: rows }, () => [1, 2, 3, 4]) }] } });
    expect(res.status).toBe(200);
    expect(res.body.outputs[0]).toMatchObject({ name: "y", shape: [rows, 4] });
    expect(res.body.outputs[0].data).toEqual(Array.from({ length: rows }, () => [3, 5, 7, 9]).flat());
    // Nested too deeply for the thread to hand back: a 400 for that body alone, and the thread serves on.
    const deep = `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":${nestedJsonArray(50_000)}}]}`;
    expect(await call("POST", "/v2/models/affine/infer", { body: deep })).toMatchObject({ status: 400, body: { error: "request body is nested too deeply" } });
    expect((await call("POST", "/v2/models/affine/infer", { body: { inputs: [{ name: "x", datatype: "FP32", shape: [rows, 4], data: new Array(rows * 4).fill(1) }] } })).status).toBe(200);
  });

  test("a swap under load: version 2 replaces version 1 while 8 clients send requests, and none fails", async () => {
    await waitJob((await call("POST", "/api/v1/models/affine/load")).body.id);
    modelDirLayout(t, 2, 3);
    expect((await call("POST", "/api/v1/models/rescan")).status).toBe(200);
    let running = true;
    const seen: Record<string, number> = {};
    const failures: number[] = [];
    const client = async () => {
      while (running) {
        const r = await call("POST", "/v2/models/affine/infer", { body: x, token: admin });
        if (r.status !== 200) failures.push(r.status);
        else seen[`${r.body.model_version}:${r.body.outputs[0].data[0]}`] = (seen[`${r.body.model_version}:${r.body.outputs[0].data[0]}`] ?? 0) + 1;
      }
    };
    const clients = Array.from({ length: 8 }, client);
    await Bun.sleep(200);
    const swap = await call("POST", "/api/v1/models/affine/load", { body: { version: "2" } });
    expect((await waitJob(swap.body.id)).state).toBe("completed");
    await Bun.sleep(200);
    running = false;
    await Promise.all(clients);
    expect(failures).toEqual([]);
    // Version 1 answers 2x+1 = 3, version 2 answers 3x+1 = 4, and nothing else.
    expect(Object.keys(seen).sort()).toEqual(["1:3", "2:4"]);
  });

  test("restart recovery: a graceful stop exits 0, and the model serving before it serves again after it", async () => {
    expect((await call("GET", "/api/v1/models/affine")).body).toMatchObject({ state: "loaded", servingVersion: "2" });
    expect(await server.stop("SIGTERM")).toBe(0);
    server = await start(t);
    for (let i = 0; i < 200 && (await call("GET", "/api/v1/models/affine")).body.state !== "loaded"; i++) await Bun.sleep(50);
    expect((await call("GET", "/api/v1/models/affine")).body).toMatchObject({ state: "loaded", servingVersion: "2" });
    expect((await call("POST", "/v2/models/affine/infer", { body: x })).body).toMatchObject({ model_version: "2", outputs: [{ data: [4, 7, 10, 13] }] });
  }, 90_000);

  test("a force unload mid-request answers the waiting requests 503, the thread exits, and the model loads again", async () => {
    await waitJob((await call("POST", "/api/v1/models/slow/load")).body.id);
    const N = 1024;
    const body = { inputs: [{ name: "x", datatype: "FP32", shape: [1, N], data: new Array(N).fill(1) }] };
    const inflight = Array.from({ length: 40 }, () => call("POST", "/v2/models/slow/infer", { body }));
    await Bun.sleep(50);
    const unload = await call("POST", "/api/v1/models/slow/unload?force=true");
    expect((await waitJob(unload.body.id)).state).toBe("completed");
    const answers = await Promise.all(inflight);
    // Answered before the unload (200), failed by it (503), or arrived after it: not loaded (400). Never another 5xx.
    const unexpected = answers.filter((r) => ![200, 503, 400].includes(r.status) || (r.status === 400 && !/not (loaded|ready)/.test(r.body.error)));
    expect(unexpected.map((r) => ({ status: r.status, body: r.body }))).toEqual([]);
    expect(answers.map((r) => r.status)).toContain(503);
    expect((await waitJob((await call("POST", "/api/v1/models/slow/load")).body.id)).state).toBe("completed");
    expect((await call("POST", "/v2/models/slow/infer", { body })).status).toBe(200);
  });

  test("a batch held for its queue delay leaves once it reaches its preferred size, and a force unload ends the wait", async () => {
    const delayMs = 1000;
    await call("PATCH", "/api/v1/models/held", { body: { batching: { maxBatchSize: 8, maxQueueDelayUs: delayMs * 1000, preferredBatchSizes: [2] } } });
    expect((await waitJob((await call("POST", "/api/v1/models/held/load?activate=false")).body.id)).outcome).toMatchObject({ batching: true });
    let started = performance.now();
    const first = call("POST", "/v2/models/held/infer", { body: x });
    await Bun.sleep(100);
    const pair = await Promise.all([first, call("POST", "/v2/models/held/infer", { body: x })]);
    expect(pair.map((r) => r.body.outputs?.[0].data)).toEqual([[3, 5, 7, 9], [3, 5, 7, 9]]);
    expect(performance.now() - started).toBeLessThan(delayMs / 2);
    expect((await call("GET", "/v2/models/held/stats")).body.model_stats[0]).toMatchObject({ execution_count: 1, inference_count: 2 });
    const held = call("POST", "/v2/models/held/infer", { body: x });
    await Bun.sleep(50);
    started = performance.now();
    const unload = await call("POST", "/api/v1/models/held/unload?force=true");
    expect((await held).status).toBe(503);
    expect((await waitJob(unload.body.id)).outcome).toMatchObject({ summary: "forced" });
    expect(performance.now() - started).toBeLessThan(delayMs / 2);
  });

  test("gRPC: the same service answers on MODELD_GRPC_PORT, with the same auth", async () => {
    const port = /"grpcPort":(\d+)/.exec(server.logs())?.[1];
    expect(port).toBeDefined();
    const client = grpcClient(`127.0.0.1:${port}`, admin);
    try {
      expect(await client.call("ServerLive", {}, null)).toEqual({ live: true });
      expect(await client.call("RepositoryModelLoad", { model_name: "affine" })).toEqual({});
      const res = await client.call("ModelInfer", { model_name: "affine", inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }] });
      expect(floats(res.raw_output_contents[0])).toEqual([4, 7, 10, 13]);
      const stream = client.stream();
      for (const k of [1, 2, 3]) stream.send({ model_name: "affine", id: `s${k}`, inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], contents: { fp32_contents: [k, k, k, k] } }] });
      const answers = await stream.received(3);
      expect(answers.map((r) => [r.infer_response.id, floats(r.infer_response.raw_output_contents[0])[0]]).sort()).toEqual([["s1", 4], ["s2", 7], ["s3", 10]]);
      stream.end();
      expect((await stream.status).code).toBe(grpc.status.OK);
      expect(await client.status("ModelMetadata", { name: "affine" }, null)).toBe(grpc.status.UNAUTHENTICATED);
      expect(await healthCheck(`127.0.0.1:${port}`, "")).toEqual({ status: "SERVING" });
    } finally {
      client.close();
    }
  });

  test("MODELD_ORT_DIR: the external ONNX Runtime is the one mapped, and it serves", async () => {
    const ext = testEnv();
    const ortDir = join(ext.root, "ort");
    mkdirSync(ortDir);
    copyFileSync(join(repo, "node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1"), join(ortDir, "libonnxruntime.so.1"));
    writeFileSync(join(ext.modelDir, "affine.onnx"), affineModel());
    // Node cannot dlopen; its loader takes the library from LD_LIBRARY_PATH, as the README says.
    const env = { ...ext.env, PATH: `${process.env.PATH}`, MODELD_ORT_DIR: ortDir, ...(RUNTIME === "node" ? { LD_LIBRARY_PATH: ortDir } : {}) };
    const s = await startBinary([...modeldCommand(), "serve"], env, repo, 60_000);
    try {
      expect(s.logs()).toContain(`"source":"external","libDir":"${ortDir}"`);
      const auth = { authorization: `Bearer ${admin}` };
      const job = (await (await fetch(`${s.url}/api/v1/models/affine/load`, { method: "POST", headers: auth })).json()) as { id: string };
      expect(await (await fetch(`${s.url}/api/v1/jobs/${job.id}?wait=30`, { headers: auth })).json()).toMatchObject({ state: "completed" });
      const res = await fetch(`${s.url}/v2/models/affine/infer`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify(x) });
      expect(((await res.json()) as { outputs: { data: number[] }[] }).outputs[0]!.data).toEqual([3, 5, 7, 9]);
      const mapped = new Set(readFileSync(`/proc/${s.proc.pid}/maps`, "utf8").split("\n").filter((l) => l.includes("libonnxruntime.so")).map((l) => l.split(/\s+/).at(-1)));
      expect([...mapped]).toEqual([join(ortDir, "libonnxruntime.so.1")]);
    } finally {
      expect(await s.stop()).toBe(0);
    }
    if (RUNTIME === "node") {
      const refused = Bun.spawnSync([...modeldCommand(), "serve"], { cwd: repo, env: { ...env, LD_LIBRARY_PATH: "", MODELD_PORT: "0" } });
      expect(refused.exitCode).toBe(1);
      expect(refused.stderr.toString()).toContain("LD_LIBRARY_PATH");
    }
    cleanup(ext);
  }, 90_000);

  test("a session worker that dies: requests in flight answer 503, the model reports WORKER_CRASHED, the server lives on, and a load serves again", async () => {
    const crashing = testEnv({ MODELD_FAULT_WORKER_CRASH_AFTER_RUNS: "1" });
    writeFileSync(join(crashing.modelDir, "affine.onnx"), affineModel());
    const s = await startBinary([...modeldCommand(), "serve"], { ...crashing.env, PATH: `${process.env.PATH}` }, repo, 60_000);
    const auth = { authorization: `Bearer ${admin}` };
    const api = async (method: string, path: string) => (await fetch(`${s.url}${path}`, { method, headers: auth })).json() as Promise<any>;
    const load = async () => expect(await api("GET", `/api/v1/jobs/${(await api("POST", "/api/v1/models/affine/load")).id}?wait=30`)).toMatchObject({ state: "completed" });
    const infer = () => fetch(`${s.url}/v2/models/affine/infer`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify(x) });
    try {
      await load();
      expect((await infer()).status).toBe(200);
      // Requests in flight when the thread died get 503; any arriving after it, "not loaded".
      const answers = await Promise.all(Array.from({ length: 8 }, async () => (await infer()).json() as Promise<any>));
      expect(answers.every((a) => /stopped serving: its worker ended|is not loaded/.test(a.error))).toBe(true);
      expect(answers.filter((a) => /stopped serving/.test(a.error)).length).toBeGreaterThan(0);
      expect(await api("GET", "/api/v1/models/affine")).toMatchObject({ state: "failed", lastError: { code: "WORKER_CRASHED" } });
      expect((await fetch(`${s.url}/v2/health/live`)).status).toBe(200);
      await load();
      expect((await infer()).status).toBe(200);
    } finally {
      expect(await s.stop()).toBe(0);
    }
    cleanup(crashing);
  }, 90_000);

  test("modeld token mints a token this runtime's server accepts", async () => {
    const p = Bun.spawnSync([...modeldCommand(), "token", "--sub", "cli", "--role", "admin"], { cwd: repo, env: { ...process.env, ...t.env } });
    expect(p.exitCode).toBe(0);
    const minted = p.stdout.toString().trim();
    const res = await call("GET", "/api/v1/models", { token: minted });
    expect(res.status).toBe(200);
  });

  test("a second server on the data dir in use exits 1 saying so, and the first serves on", async () => {
    const p = Bun.spawnSync([...modeldCommand(), "serve"], { cwd: repo, env: { ...process.env, ...t.env, MODELD_PORT: "0", MODELD_GRPC_PORT: "0" } });
    expect({ code: p.exitCode, stderr: p.stderr.toString().trim() }).toEqual({
      code: 1,
      stderr: `modeld: another modeld is serving from ${t.dataDir} (it holds ${join(t.dataDir, "modeld.lock")}); stop it first, or give this one a MODELD_DATA_DIR of its own`,
    });
    expect((await call("GET", "/v2/health/ready")).status).toBe(200);
  });
});
