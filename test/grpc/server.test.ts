// The Open Inference Protocol over gRPC, driven by a grpc-js client on the
// same service definition, against a real service on a free port.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as grpc from "@grpc/grpc-js";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { VERSION } from "../../src/http/app";
import { startGrpcServer, type GrpcServer } from "../../src/grpc/server";
import type { Service } from "../../src/server";
import { affineModel, identityModel } from "../fixtures/onnx-builder";
import { floats, grpcClient, healthCheck, type GrpcClient } from "../fixtures/grpc-client";
import { cleanup, startTestService, testEnv, token, until, writeModel, type TestEnv } from "../helpers";

let t: TestEnv;
let svc: Service;
let server: GrpcServer;
let client: GrpcClient;
let admin: string;

beforeAll(async () => {
  t = testEnv();
  writeModel(t.modelDir, "affine.onnx", affineModel());
  writeModel(t.modelDir, "words.onnx", identityModel("string", ["batch"]));
  writeModel(t.modelDir, "wide.onnx", identityModel("int64", ["batch"]));
  writeModel(t.modelDir, "uwide.onnx", identityModel("uint64", ["batch"]));
  writeModel(t.modelDir, "held.onnx", affineModel());
  svc = await startTestService(t);
  server = await startGrpcServer(svc.deps, svc.verify, { host: "127.0.0.1", port: 0, version: VERSION });
  admin = await token();
  client = grpcClient(`127.0.0.1:${server.port}`, admin);
});

afterAll(async () => {
  client?.close();
  await server?.stop(1000);
  await svc?.close();
  if (t) cleanup(t);
});

const call = (method: string, request: object, tok?: string | null) => client.call(method, request, tok);
const status = (p: Promise<unknown>) => p.then(() => grpc.status.OK, (e: grpc.ServiceError) => e.code);

describe("gRPC", () => {
  test("health and server metadata", async () => {
    expect(await call("ServerLive", {}, null)).toEqual({ live: true });
    expect(await call("ServerReady", {}, null)).toEqual({ ready: true });
    expect(await call("ServerMetadata", {})).toMatchObject({ name: "modeld", extensions: expect.arrayContaining(["model_repository", "statistics"]) });
  });

  test("repository load, model readiness, metadata and config, and unload, answering when the job is done", async () => {
    expect(await call("ModelReady", { name: "affine" })).toEqual({ ready: false });
    expect(await call("RepositoryModelLoad", { model_name: "affine" })).toEqual({});
    expect(await call("ModelReady", { name: "affine" })).toEqual({ ready: true });
    expect(await call("ModelReady", { name: "affine", version: "1" })).toEqual({ ready: true });
    const meta = await call("ModelMetadata", { name: "affine" });
    expect(meta).toMatchObject({ name: "affine", versions: ["1"], platform: "onnxruntime_onnx", inputs: [{ name: "x", datatype: "FP32", shape: [-1, 4] }] });
    const { config } = await call("ModelConfig", { name: "affine" });
    expect(config).toMatchObject({ name: "affine", platform: "onnxruntime_onnx", backend: "onnxruntime", max_batch_size: 0, input: [{ name: "x", data_type: "TYPE_FP32", dims: [-1, 4] }] });
    expect(config.instance_group[0]).toMatchObject({ kind: "KIND_CPU", count: 1 });
    const index = await call("RepositoryIndex", {});
    expect(index.models).toContainEqual({ name: "affine", version: "1", state: "READY", reason: "" });
    expect(await call("RepositoryModelUnload", { model_name: "affine", parameters: { unload_dependents: { bool_param: false } } })).toEqual({});
    expect(await call("ModelReady", { name: "affine" })).toEqual({ ready: false });
  });

  test("ModelInfer with raw_input_contents and with typed contents; outputs come back raw, as Triton sends them", async () => {
    await call("RepositoryModelLoad", { model_name: "affine" });
    const raw = await call("ModelInfer", {
      model_name: "affine",
      id: "r1",
      inputs: [{ name: "x", datatype: "FP32", shape: [1, 4] }],
      raw_input_contents: [Buffer.from(new Float32Array([1, 2, 3, 4]).buffer)],
    });
    expect(raw).toMatchObject({ model_name: "affine", model_version: "1", id: "r1", outputs: [{ name: "y", datatype: "FP32", shape: [1, 4] }] });
    expect(floats(raw.raw_output_contents[0])).toEqual([3, 5, 7, 9]);
    const typed = await call("ModelInfer", { model_name: "affine", inputs: [{ name: "x", datatype: "FP32", shape: [2, 4], contents: { fp32_contents: [0, 1, 2, 3, 4, 5, 6, 7] } }] });
    expect(floats(typed.raw_output_contents[0])).toEqual([1, 3, 5, 7, 9, 11, 13, 15]);
    // BYTES in raw form: each element a uint32 length and its bytes.
    await call("RepositoryModelLoad", { model_name: "words" });
    const words = await call("ModelInfer", { model_name: "words", inputs: [{ name: "in", datatype: "BYTES", shape: [2], contents: { bytes_contents: [Buffer.from("héllo"), Buffer.from("")] } }] });
    const w = words.raw_output_contents[0] as Buffer;
    expect(w.readUInt32LE(0)).toBe(Buffer.byteLength("héllo"));
    expect(w.subarray(4, 4 + Buffer.byteLength("héllo")).toString()).toBe("héllo");
  });

  test("INT64 and UINT64 past 2^53 are exact, through raw contents and through typed contents", async () => {
    for (const [model, datatype, field, values] of [
      ["wide", "INT64", "int64_contents", new BigInt64Array([2n ** 60n + 1n, -(2n ** 62n) - 7n, 2n ** 63n - 1n, -(2n ** 63n)])],
      ["uwide", "UINT64", "uint64_contents", new BigUint64Array([2n ** 53n + 1n, 2n ** 63n + 5n, 2n ** 64n - 1n, 0n])],
    ] as const) {
      await call("RepositoryModelLoad", { model_name: model });
      const sent = Buffer.from(values.buffer);
      const raw = await call("ModelInfer", { model_name: model, inputs: [{ name: "in", datatype, shape: [4] }], raw_input_contents: [sent] });
      expect(Buffer.from(raw.raw_output_contents[0]).equals(sent)).toBe(true);
      // As decimal strings, as protobuf's JSON and clients holding 64-bit integers write them.
      const typed = await call("ModelInfer", { model_name: model, inputs: [{ name: "in", datatype, shape: [4], contents: { [field]: [...values].map(String) } }] });
      expect(Buffer.from(typed.raw_output_contents[0]).equals(sent)).toBe(true);
      await call("RepositoryModelUnload", { model_name: model });
    }
  });

  test("repository changes over gRPC are in the audit log as HTTP's are, refusals included", async () => {
    await call("RepositoryModelLoad", { model_name: "affine" });
    expect(await client.status("RepositoryModelUnload", { model_name: "affine" }, null)).toBe(grpc.status.UNAUTHENTICATED);
    expect(await client.status("RepositoryModelUnload", { model_name: "affine" }, await token({ role: "infer" }, { sub: "mallory" }))).toBe(grpc.status.PERMISSION_DENIED);
    await call("RepositoryIndex", {}); // a read: not an entry
    const res = await svc.app.request("/api/v1/audit?limit=3", { headers: { authorization: `Bearer ${admin}` } });
    const entries = ((await res.json()) as { entries: any[] }).entries.map((e) => [e.actor, e.action, e.target, e.sourceIp, e.status, e.outcome]);
    expect(entries).toEqual([
      ["mallory", "gRPC RepositoryModelUnload", "affine", "127.0.0.1", 403, "FORBIDDEN"],
      ["unauthenticated", "gRPC RepositoryModelUnload", "affine", "127.0.0.1", 401, "UNAUTHORIZED"],
      ["tester", "gRPC RepositoryModelLoad", "affine", "127.0.0.1", 200, "ok"],
    ]);
  });

  test("statistics count gRPC requests like HTTP ones", async () => {
    await call("RepositoryModelLoad", { model_name: "affine" });
    const before = (await call("ModelStatistics", { name: "affine", version: "1" })).model_stats[0];
    for (let i = 0; i < 3; i++) await call("ModelInfer", { model_name: "affine", inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }] });
    const after = (await call("ModelStatistics", { name: "affine", version: "1" })).model_stats[0];
    expect(after.inference_stats.success.count - before.inference_stats.success.count).toBe(3);
    expect(after.inference_stats.queue.count - before.inference_stats.queue.count).toBe(3);
    expect((await call("ModelStatistics", {})).model_stats.map((s: any) => s.name).sort()).toEqual(["affine", "held", "uwide", "wide", "words"]);
  });

  test("errors map to gRPC status codes, with modeld's message", async () => {
    await call("RepositoryModelLoad", { model_name: "affine" });
    expect(await status(call("ModelMetadata", { name: "ghost" }))).toBe(grpc.status.NOT_FOUND);
    expect(await status(call("ModelInfer", { model_name: "affine", inputs: [{ name: "x", datatype: "FP32", shape: [1, 3], contents: { fp32_contents: [1, 2, 3] } }] }))).toBe(grpc.status.INVALID_ARGUMENT);
    const err = await call("ModelInfer", { model_name: "affine", inputs: [{ name: "x", datatype: "FP32", shape: [1, 4] }], raw_input_contents: [Buffer.alloc(12)] }).catch((e) => e);
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toContain("bytes");
    expect(await status(call("RepositoryModelLoad", { model_name: "affine", parameters: { config: { string_param: "{}" } } }))).toBe(grpc.status.INVALID_ARGUMENT);
    // The HTTP body schema holds for gRPC requests too.
    expect(await status(call("ModelInfer", { model_name: "affine", inputs: [{ name: "x", datatype: "FP32", shape: [-1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }] }))).toBe(grpc.status.INVALID_ARGUMENT);
    expect(await status(call("ModelInfer", { model_name: "affine", inputs: [] }))).toBe(grpc.status.INVALID_ARGUMENT);
    await call("RepositoryModelUnload", { model_name: "words" });
    const word = { name: "in", datatype: "BYTES", shape: [1], contents: { bytes_contents: [Buffer.from("a")] } };
    expect(await status(call("ModelInfer", { model_name: "words", inputs: [word] }))).toBe(grpc.status.UNAVAILABLE);
  });

  test("under load: 64 concurrent calls of 256 KiB tensors each get their own answer, and none is left hanging", async () => {
    await call("RepositoryModelLoad", { model_name: "affine" });
    const n = 16384; // rows of 4 floats: 256 KiB
    const answers = await Promise.all(
      Array.from({ length: 64 }, async (_, k) => {
        const x = new Float32Array(n * 4).fill(k);
        const res = await call("ModelInfer", { model_name: "affine", inputs: [{ name: "x", datatype: "FP32", shape: [n, 4] }], raw_input_contents: [Buffer.from(x.buffer)] });
        const y = floats(res.raw_output_contents[0]);
        return y.length === n * 4 && y.every((v) => v === 2 * k + 1);
      }),
    );
    expect(answers.every(Boolean)).toBe(true);
  }, 60_000);

  test("ModelStreamInfer: each request answered on the stream, matched by id; a bad one gets its error_message and the stream goes on", async () => {
    await call("RepositoryModelLoad", { model_name: "affine" });
    const stream = client.stream();
    const request = (k: number) => ({ model_name: "affine", id: `s${k}`, inputs: [{ name: "x", datatype: "FP32", shape: [1, 4] }], raw_input_contents: [Buffer.from(new Float32Array(4).fill(k).buffer)] });
    for (let k = 0; k < 20; k++) stream.send(request(k));
    stream.send({ model_name: "affine", id: "bad", inputs: [{ name: "x", datatype: "FP32", shape: [1, 3], contents: { fp32_contents: [1, 2, 3] } }] });
    stream.send({ model_name: "ghost", id: "nobody", inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }] });
    stream.send(request(20));
    const responses = await stream.received(23);
    const byId = new Map(responses.map((r) => [r.infer_response.id, r]));
    expect(byId.size).toBe(23);
    for (let k = 0; k <= 20; k++) {
      const r = byId.get(`s${k}`)!;
      expect(r.error_message).toBe("");
      expect(r.infer_response).toMatchObject({ model_name: "affine", model_version: "1", outputs: [{ name: "y", datatype: "FP32", shape: [1, 4] }] });
      expect(floats(r.infer_response.raw_output_contents[0])).toEqual([2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1]);
    }
    expect(byId.get("bad")).toMatchObject({ error_message: expect.stringContaining("the model expects 4"), infer_response: { id: "bad", model_name: "affine" } });
    expect(byId.get("nobody")).toMatchObject({ error_message: expect.stringContaining("ghost"), infer_response: { id: "nobody", model_name: "ghost" } });
    stream.end();
    expect((await stream.status).code).toBe(grpc.status.OK);
  });

  test("ModelStreamInfer: a refused token ends the stream with its status, as it fails a unary call", async () => {
    const anonymous = client.stream(null);
    anonymous.send({ model_name: "affine", inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }] });
    expect((await anonymous.status).code).toBe(grpc.status.UNAUTHENTICATED);
    const metricsOnly = client.stream(await token({ role: "metrics" }));
    metricsOnly.send({ model_name: "affine", inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }] });
    expect((await metricsOnly.status).code).toBe(grpc.status.PERMISSION_DENIED);
  });

  test("ModelStreamInfer: a stop ends an open stream once its requests are answered, not by force", async () => {
    // A batch held for 300 ms keeps the second request in flight while the stop begins.
    const patch = await svc.app.request("/api/v1/models/held", {
      method: "PATCH",
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      body: JSON.stringify({ batching: { maxBatchSize: 8, maxQueueDelayUs: 300_000 } }),
    });
    expect(patch.status).toBe(200);
    await call("RepositoryModelLoad", { model_name: "held" });
    const second = await startGrpcServer(svc.deps, svc.verify, { host: "127.0.0.1", port: 0, version: VERSION });
    const other = grpcClient(`127.0.0.1:${second.port}`, admin);
    const stream = other.stream();
    const request = (id: string) => ({ model_name: "held", id, inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }] });
    stream.send(request("before"));
    await stream.received(1);
    stream.send(request("during"));
    await until(async () => svc.deps.runtime.get("held")?.inflight ?? 0, (n) => n > 0);
    // Without the stream's own close, the stop would wait out its bound for a client that keeps the stream open.
    await second.stop(60_000);
    const [status, responses] = await Promise.all([stream.status, stream.received(2)]);
    expect(status.code).toBe(grpc.status.OK);
    expect(responses.map((r) => [r.infer_response.id, r.error_message])).toEqual([["before", ""], ["during", ""]]);
    other.close();
    await call("RepositoryModelUnload", { model_name: "held" });
  });

  test("grpc.health.v1 Check, as Kubernetes' gRPC probes call it: readiness, without a token", async () => {
    const address = `127.0.0.1:${server.port}`;
    expect(await healthCheck(address, "")).toEqual({ status: "SERVING" });
    expect(await healthCheck(address, "inference.GRPCInferenceService")).toEqual({ status: "SERVING" });
    expect(await healthCheck(address, "something.Else")).toEqual({ code: grpc.status.NOT_FOUND });
    const unready = await startGrpcServer(svc.deps, svc.verify, { host: "127.0.0.1", port: 0, version: VERSION, isReady: () => false });
    expect(await healthCheck(`127.0.0.1:${unready.port}`, "")).toEqual({ status: "NOT_SERVING" });
    await unready.stop(1000);
  });

  test("auth: a Bearer token in the authorization metadata, with the same roles as HTTP", async () => {
    expect(await status(call("ModelMetadata", { name: "affine" }, null))).toBe(grpc.status.UNAUTHENTICATED);
    expect(await status(call("ModelMetadata", { name: "affine" }, "not.a.token"))).toBe(grpc.status.UNAUTHENTICATED);
    const infer = await token({ role: "infer" });
    expect(await status(call("ModelMetadata", { name: "affine" }, infer))).toBe(grpc.status.OK);
    expect(await status(call("RepositoryIndex", {}, infer))).toBe(grpc.status.PERMISSION_DENIED);
    expect(await status(call("RepositoryModelUnload", { model_name: "affine" }, infer))).toBe(grpc.status.PERMISSION_DENIED);
    expect(await status(call("ServerLive", {}, null))).toBe(grpc.status.OK);
  });
});

test("system shared memory over gRPC, as tritonclient.grpc uses it: raw contents only for the inputs not in a region, an empty one per output written to a region", async () => {
  expect(await status(call("SystemSharedMemoryRegister", { name: "r", key: "/x", byte_size: 8 }))).toBe(grpc.status.INVALID_ARGUMENT);
  const t2 = testEnv({ MODELD_ALLOW_CLIENT_SHM: "true" });
  writeModel(t2.modelDir, "pair.onnx", affineModel(2, 1));
  const svc2 = await startTestService(t2);
  const server2 = await startGrpcServer(svc2.deps, svc2.verify, { host: "127.0.0.1", port: 0, version: VERSION });
  const c2 = grpcClient(`127.0.0.1:${server2.port}`, admin);
  const object = join("/dev/shm", `modeld-grpc-${process.pid}`);
  try {
    writeFileSync(object, Buffer.concat([Buffer.from(new Float32Array([1, 2, 3, 4]).buffer), Buffer.alloc(16)]));
    expect((await c2.call("ServerMetadata", {})).extensions).toContain("system_shared_memory");
    await c2.call("SystemSharedMemoryRegister", { name: "io", key: `/modeld-grpc-${process.pid}`, offset: 0, byte_size: 32 });
    const listed = await c2.call("SystemSharedMemoryStatus", {});
    expect(listed.regions).toEqual({ io: { name: "io", key: `/modeld-grpc-${process.pid}`, offset: 0, byte_size: 32 } });
    expect(await c2.status("SystemSharedMemoryStatus", { name: "io" }, await token({ role: "infer" }))).toBe(grpc.status.PERMISSION_DENIED);
    await c2.call("RepositoryModelLoad", { model_name: "pair" });
    const region = (offset: number) => ({
      shared_memory_region: { string_param: "io" },
      shared_memory_offset: { int64_param: offset },
      shared_memory_byte_size: { int64_param: 16 },
    });
    const inShm = await c2.call("ModelInfer", {
      model_name: "pair",
      inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], parameters: region(0) }],
      outputs: [{ name: "y", parameters: region(16) }],
    });
    expect(inShm.raw_output_contents).toEqual([Buffer.alloc(0)]);
    expect(inShm.outputs[0].parameters.shared_memory_region).toEqual({ string_param: "io", parameter_choice: "string_param" });
    expect(inShm.outputs[0].parameters.shared_memory_byte_size.int64_param).toBe(16);
    expect(floats(readFileSync(object).subarray(16))).toEqual([3, 5, 7, 9]);
    // An input in a region needs no raw entry; the outputs not in a region keep theirs.
    const mixed = await c2.call("ModelInfer", { model_name: "pair", inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], parameters: region(0) }] });
    expect(floats(mixed.raw_output_contents[0])).toEqual([3, 5, 7, 9]);
    expect(mixed.outputs[0].parameters).toEqual({});
    expect(await c2.status("CudaSharedMemoryRegister", { name: "g", byte_size: 8 })).toBe(grpc.status.INVALID_ARGUMENT);
    expect(await c2.status("CudaSharedMemoryUnregister", {})).toBe(grpc.status.OK);
    await c2.call("SystemSharedMemoryUnregister", {});
    expect((await c2.call("SystemSharedMemoryStatus", {})).regions).toEqual({});
  } finally {
    rmSync(object, { force: true });
    c2.close();
    await server2.stop(1000);
    await svc2.close();
    cleanup(t2);
  }
});
