import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync, statSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Service } from "../../src/server";
import { affineModel, bigModel, buildModel } from "../fixtures/onnx-builder";
import { cleanup, client, startTestService, testEnv, token, writeModel, type Client, type TestEnv } from "../helpers";

let t: TestEnv;
let svc: Service;
let api: Client;

/** y = x + w where w is stored as external data at `location`. */
function externalDataModel(location: string): Uint8Array {
  return buildModel({
    inputs: [{ name: "x", type: "float32", shape: [4] }],
    outputs: [{ name: "y", type: "float32", shape: [4] }],
    initializers: [{ name: "w", type: "float32", dims: [4], external: { location, offset: 0, length: 16 } }],
    nodes: [{ op: "Add", inputs: ["x", "w"], outputs: ["y"] }],
  });
}

beforeAll(async () => {
  t = testEnv({ MODELD_MAX_PENDING_JOBS: "50" });
  writeModel(t.modelDir, "affine.onnx", affineModel());
  writeModel(t.modelDir, "big.onnx", bigModel(150));
  // Corrupt models of every kind.
  const good = affineModel();
  writeModel(t.modelDir, "truncated.onnx", good.subarray(0, Math.floor(good.length / 2)));
  writeModel(t.modelDir, "random.onnx", randomBytes(4096));
  writeModel(t.modelDir, "garbage-tail.onnx", Buffer.concat([good.subarray(0, 24), randomBytes(2048)]));
  writeModel(t.modelDir, "empty.onnx", new Uint8Array(0));
  // 64 MiB of zeros, as a preallocated download that never finished leaves it: reading it for
  // external data locations took a minute, so the start's scan did not end.
  writeModel(t.modelDir, "zeros.onnx", new Uint8Array(0));
  truncateSync(join(t.modelDir, "zeros.onnx"), 64 * 1024 * 1024);
  // External data: one inside the model's directory, three trying to leave it.
  writeFileSync(join(t.root, "secret.bin"), new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer));
  writeModel(t.modelDir, "ext-ok/weights.bin", new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer));
  writeModel(t.modelDir, "ext-ok/model.onnx", externalDataModel("weights.bin"));
  writeModel(t.modelDir, "ext-dotdot/model.onnx", externalDataModel("../../secret.bin"));
  writeModel(t.modelDir, "ext-abs/model.onnx", externalDataModel(join(t.root, "secret.bin")));
  writeModel(t.modelDir, "ext-link/model.onnx", externalDataModel("weights.bin"));
  symlinkSync(join(t.root, "secret.bin"), join(t.modelDir, "ext-link/weights.bin"));
  svc = await startTestService(t);
  api = await client(svc);
});
afterAll(async () => {
  await svc.close();
  cleanup(t);
});

const load = async (id: string) => api.waitJob((await api.json("POST", `/api/v1/models/${id}/load?activate=false`)).body.id);

describe("model files", () => {
  test.each(["truncated", "random", "garbage-tail", "empty", "zeros"])("%s model: the job fails with ONNX Runtime's message, the server stays up", async (id) => {
    const done = await load(id);
    expect(done.state).toBe("failed");
    expect(done.error?.code).toBe("LOAD_FAILED");
    expect(done.error!.message.length).toBeGreaterThan(10);
    expect((await api.json("GET", `/api/v1/models/${id}`)).body).toMatchObject({ state: "failed", lastError: { code: "LOAD_FAILED" } });
    expect((await api.call("GET", "/health")).status).toBe(200);
  });

  test("external data inside the model's directory loads; every escape is refused before ONNX Runtime", async () => {
    expect((await load("ext-ok")).state).toBe("completed");
    const out = await api.json("POST", "/v2/models/ext-ok/infer", { body: { inputs: [{ name: "x", datatype: "FP32", shape: [4], data: [1, 1, 1, 1] }] } });
    expect(out.body.outputs[0].data).toEqual([2, 3, 4, 5]);
    for (const [id, why] of [["ext-dotdot", '".."'], ["ext-abs", "absolute"], ["ext-link", "symlink"]]) {
      const done = await load(id!);
      expect({ id, state: done.state, code: done.error?.code }).toEqual({ id, state: "failed", code: "UNSAFE_EXTERNAL_DATA" });
      expect(done.error!.message).toContain(why!);
    }
  });

  test("a file changed after registration fails with CHECKSUM_MISMATCH", async () => {
    writeModel(t.modelDir, "drift.onnx", affineModel());
    await api.json("POST", "/api/v1/models", { body: { id: "drift", path: "drift.onnx" } });
    writeModel(t.modelDir, "drift.onnx", Buffer.concat([affineModel(), Buffer.from([0])]));
    const done = await load("drift");
    expect(done.error?.code).toBe("CHECKSUM_MISMATCH");
    truncateSync(join(t.modelDir, "drift.onnx"), 0);
  });

  test("same size, new content and the mtime forged back: the ctime still differs, so the re-hash runs and fails", async () => {
    const path = writeModel(t.modelDir, "forged.onnx", affineModel(2, 1));
    await api.json("POST", "/api/v1/models", { body: { id: "forged", path: "forged.onnx" } });
    const before = statSync(path, { bigint: true });
    expect((await load("forged")).state).toBe("completed"); // unchanged: no re-hash needed
    await api.waitJob((await api.json("POST", "/api/v1/models/forged/unload")).body.id);
    const replacement = affineModel(2, 3); // other weights, the same number of bytes
    expect(BigInt(replacement.byteLength)).toBe(before.size);
    await Bun.sleep(20); // a distinct ctime
    writeFileSync(path, replacement);
    // Back to the nanosecond: what an attacker (or a careless deploy script) can forge.
    const ns = before.mtimeNs;
    const forged = Bun.spawnSync(["touch", "-d", `@${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, "0")}`, path]);
    expect(forged.exitCode).toBe(0);
    const after = statSync(path, { bigint: true });
    expect({ size: after.size, mtimeNs: after.mtimeNs, ino: after.ino }).toEqual({ size: before.size, mtimeNs: before.mtimeNs, ino: before.ino });
    expect(after.ctimeNs).not.toBe(before.ctimeNs);
    const done = await load("forged");
    expect(done.error?.code).toBe("CHECKSUM_MISMATCH");
  });

  test("weights in an external data file are part of the version: changed behind an unchanged model file, the load fails CHECKSUM_MISMATCH; a rescan records them", async () => {
    const weights = writeModel(t.modelDir, "ext-drift/weights.bin", new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer));
    const modelFile = writeModel(t.modelDir, "ext-drift/model.onnx", externalDataModel("weights.bin"));
    expect((await api.json("POST", "/api/v1/models/rescan")).body.added).toContainEqual({ id: "ext-drift", version: "1" });
    const registered = (await api.json("GET", "/api/v1/models/ext-drift")).body;
    const both = Buffer.concat([readFileSync(modelFile), readFileSync(weights)]);
    expect(registered).toMatchObject({ sizeBytes: both.byteLength, sha256: createHash("sha256").update(both).digest("hex") });
    const x = { body: { inputs: [{ name: "x", datatype: "FP32", shape: [4], data: [1, 1, 1, 1] }] } };
    expect((await load("ext-drift")).state).toBe("completed");
    expect((await api.json("POST", "/v2/models/ext-drift/infer", x)).body.outputs[0].data).toEqual([2, 3, 4, 5]);
    await api.waitJob((await api.json("POST", "/api/v1/models/ext-drift/unload")).body.id);
    // Other weights, the same size, the mtime forged back: only the ctime tells.
    const before = statSync(weights, { bigint: true });
    await Bun.sleep(20);
    writeFileSync(weights, new Uint8Array(new Float32Array([5, 6, 7, 8]).buffer));
    const ns = before.mtimeNs;
    expect(Bun.spawnSync(["touch", "-d", `@${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, "0")}`, weights]).exitCode).toBe(0);
    const refused = await load("ext-drift");
    expect(refused.error?.code).toBe("CHECKSUM_MISMATCH");
    expect(refused.error!.message).toStartWith("the sha256 of ext-drift/model.onnx and its external data (weights.bin) is ");
    // It says how to take the change, which the operator then does.
    expect(refused.error!.message).toContain("POST /api/v1/models/rescan records it");
    expect((await api.json("POST", "/api/v1/models/rescan")).body.updated).toContainEqual({ id: "ext-drift", version: "1" });
    expect((await load("ext-drift")).state).toBe("completed");
    expect((await api.json("POST", "/v2/models/ext-drift/infer", x)).body.outputs[0].data).toEqual([6, 7, 8, 9]);
  });
});

describe("cancellation", () => {
  test("a pending job is cancelled at once; a finished one answers 409", async () => {
    const running = (await api.json("POST", "/api/v1/models/big/load")).body;
    const pending = (await api.json("POST", "/api/v1/models/big/unload")).body;
    expect(pending.state).toBe("pending");
    const cancelled = await api.json("POST", `/api/v1/jobs/${pending.id}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ state: "cancelled", error: { code: "CANCELLED" } });
    expect((await api.waitJob(running.id)).state).toBe("completed");
    const again = await api.json("POST", `/api/v1/jobs/${pending.id}/cancel`);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("JOB_FINISHED");
    await api.waitJob((await api.json("POST", "/api/v1/models/big/unload")).body.id);
  });

  test("a running load is cancelled: its worker stops and the model is simply not loaded", async () => {
    const job = (await api.json("POST", "/api/v1/models/big/load")).body;
    while ((await api.json("GET", `/api/v1/jobs/${job.id}`)).body.state === "pending") await Bun.sleep(2);
    const cancelled = await api.json("POST", `/api/v1/jobs/${job.id}/cancel`);
    expect(cancelled.body.state).toBe("cancelled");
    expect((await api.waitJob(job.id)).state).toBe("cancelled");
    // The executor unwinds after the cancel is answered; then the model settles.
    await svc.loop.idle();
    const deadline = Date.now() + 20_000;
    while (svc.deps.runtime.threadsOf("big") > 0 && Date.now() < deadline) await Bun.sleep(10);
    expect(svc.deps.runtime.threadsOf("big")).toBe(0);
    expect((await api.json("GET", "/api/v1/models/big")).body.state).toBe("unloaded");
  });
});

describe("idempotency and bounds", () => {
  test("the same Idempotency-Key returns the original job; another request with it is 422", async () => {
    const headers = { "idempotency-key": "deploy-42" };
    const first = await api.json("POST", "/api/v1/models/affine/load", { headers });
    await api.waitJob(first.body.id);
    const second = await api.json("POST", "/api/v1/models/affine/load", { headers });
    expect(second.status).toBe(202);
    expect(second.body.id).toBe(first.body.id);
    const other = await api.json("POST", "/api/v1/models/affine/unload", { headers });
    expect(other.status).toBe(422);
    expect(other.body.error.code).toBe("IDEMPOTENCY_KEY_REUSED");
  });

  test("oversized bodies are 413 with the one error shape", async () => {
    const res = await api.json("POST", "/api/v1/models", { body: { id: "x", path: "a".repeat(2 * 1024 * 1024) } });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe("PAYLOAD_TOO_LARGE");
  });

  test("oversized bodies are 413 whether their length is declared or they stream in chunks", async () => {
    const big = JSON.stringify({ id: "x", path: "a".repeat(2 * 1024 * 1024) });
    const headers = { authorization: `Bearer ${await token()}`, "content-type": "application/json" };
    const declared = await svc.app.request("/api/v1/models", { method: "POST", headers: { ...headers, "content-length": String(big.length) }, body: big });
    const chunks = new TextEncoder().encode(big);
    const streamed = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let at = 0; at < chunks.byteLength; at += 64 * 1024) controller.enqueue(chunks.subarray(at, at + 64 * 1024));
        controller.close();
      },
    });
    const chunked = await svc.app.request("/api/v1/models", { method: "POST", headers, body: streamed, duplex: "half" } as RequestInit);
    for (const res of [declared, chunked]) {
      expect(res.status).toBe(413);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("PAYLOAD_TOO_LARGE");
    }
    // A small body with its length declared goes on to validation.
    const small = JSON.stringify({ id: "x" });
    const ok = await svc.app.request("/api/v1/models", { method: "POST", headers: { ...headers, "content-length": String(small.length) }, body: small });
    expect(ok.status).toBe(400);
  });

  test("past MODELD_MAX_PENDING_JOBS: 429 with Retry-After", async () => {
    const t2 = testEnv({ MODELD_MAX_PENDING_JOBS: "2" });
    writeModel(t2.modelDir, "big.onnx", bigModel(100));
    for (const id of ["a", "b", "c"]) writeModel(t2.modelDir, `${id}.onnx`, affineModel());
    const svc2 = await startTestService(t2);
    try {
      const api2 = await client(svc2);
      const statuses = [];
      for (const id of ["big", "a", "b", "c"]) statuses.push((await api2.json("POST", `/api/v1/models/${id}/load`)).res);
      const refused = statuses.find((r) => r.status === 429)!;
      expect(refused).toBeDefined();
      expect(refused.headers.get("retry-after")).toBe("5");
    } finally {
      await svc2.close();
      cleanup(t2);
    }
  });
});

describe("audit log", () => {
  test("every admin action is recorded with who, what, where from and the outcome, refusals included", async () => {
    await api.json("POST", "/api/v1/models", { body: { id: "bad id" } });
    await api.json("POST", "/api/v1/models/affine/load", { token: await token({ role: "infer" }, { sub: "mallory" }) });
    await api.json("POST", "/api/v1/models/affine/load", { token: null });
    await api.json("POST", "/api/v1/models/ghost/load");
    const { status, body } = await api.json("GET", "/api/v1/audit?limit=3");
    expect(status).toBe(200);
    expect(body.entries.map((e: any) => [e.actor, e.action, e.target, e.status, e.outcome])).toEqual([
      ["tester", "POST /api/v1/models/:id/load", "ghost", 404, "MODEL_NOT_FOUND"],
      ["unauthenticated", "POST /api/v1/models/:id/load", "affine", 401, "UNAUTHORIZED"],
      ["mallory", "POST /api/v1/models/:id/load", "affine", 403, "FORBIDDEN"],
    ]);
    expect(body.entries[0].requestId).toBeString();
    const page2 = (await api.json("GET", `/api/v1/audit?limit=3&before=${body.nextBefore}`)).body.entries;
    expect(page2[0]).toMatchObject({ actor: "tester", action: "POST /api/v1/models", status: 400, outcome: "VALIDATION_ERROR" });
    expect(page2[0].seq).toBeLessThan(body.entries[2].seq);
    expect((await api.json("GET", "/api/v1/audit", { token: await token({ role: "infer" }) })).status).toBe(403);
  });

  test("refusals are folded: a client without a token cannot write a row per request, and admin actions are all recorded", async () => {
    const last = async () => (await api.json("GET", "/api/v1/audit?limit=1")).body.entries[0].seq as number;
    const before = await last();
    // Another caller's refusal first: its own window, so it is recorded whatever came before.
    await api.json("POST", "/api/v1/models/affine/load", { token: await token({ role: "infer" }, { sub: "eve" }) });
    await Promise.all(Array.from({ length: 50 }, () => api.json("POST", `/api/v1/models/${"x".repeat(5000)}/load`, { token: null })));
    for (let i = 0; i < 3; i++) await api.json("POST", "/api/v1/models/ghost/load");
    const entries = (await api.json("GET", "/api/v1/audit?limit=100")).body.entries.filter((e: any) => e.seq > before);
    const rows = entries.map((e: any) => [e.actor, e.status, e.repeats]);
    expect(rows.filter(([actor]: [string]) => actor === "unauthenticated").length).toBeLessThanOrEqual(1);
    expect(rows.filter(([actor]: [string]) => actor === "tester")).toEqual([["tester", 404, 0], ["tester", 404, 0], ["tester", 404, 0]]);
    expect(rows.find(([actor]: [string]) => actor === "eve")).toEqual(["eve", 403, 0]);
    for (const e of entries) expect((e.target ?? "").length).toBeLessThanOrEqual(128);
  });
});
