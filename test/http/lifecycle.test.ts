import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Service } from "../../src/server";
import { affineModel, bigModel } from "../fixtures/onnx-builder";
import { cleanup, client, startTestService, testEnv, token, writeModel, type Client, type TestEnv } from "../helpers";

let t: TestEnv;
let svc: Service;
let api: Client;

beforeAll(async () => {
  t = testEnv();
  writeModel(t.modelDir, "affine.onnx", affineModel());
  writeModel(t.modelDir, "nested/model.onnx", affineModel());
  writeModel(t.modelDir, "other.onnx", affineModel());
  writeModel(t.modelDir, "corrupt.onnx", "this is not an onnx file at all");
  svc = await startTestService(t);
  api = await client(svc);
});

afterAll(async () => {
  await svc.close();
  cleanup(t);
});

describe("model registry", () => {
  test("the model dir is scanned at start: <id>.onnx and <id>/model.onnx", async () => {
    const { status, body } = await api.json("GET", "/api/v1/models");
    expect(status).toBe(200);
    const ids = body.models.map((m: { id: string }) => m.id);
    expect(ids).toEqual(["affine", "corrupt", "nested", "other"]);
    const nested = body.models.find((m: { id: string }) => m.id === "nested");
    expect(nested).toMatchObject({ path: "nested/model.onnx", state: "unloaded", active: false, inputs: null, source: "scan" });
    expect(nested.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(nested.sizeBytes).toBe(affineModel().byteLength);
  });

  test("register through the API records size and sha256", async () => {
    writeModel(t.modelDir, "extra/v1.onnx", affineModel());
    const { status, body } = await api.json("POST", "/api/v1/models", { body: { id: "extra", path: "extra/v1.onnx" } });
    expect(status).toBe(201);
    expect(body).toMatchObject({ id: "extra", path: "extra/v1.onnx", state: "unloaded", source: "api" });
    const again = await api.json("POST", "/api/v1/models", { body: { id: "extra", path: "extra/v1.onnx" } });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("MODEL_EXISTS");
  });

  test("paths that escape the model dir are rejected with 400", async () => {
    const outside = join(t.root, "outside.onnx");
    writeFileSync(outside, affineModel());
    symlinkSync(outside, join(t.modelDir, "escape.onnx"));
    for (const path of ["../outside.onnx", "nested/../../outside.onnx", outside, "/etc/passwd", "escape.onnx"]) {
      const { status, body } = await api.json("POST", "/api/v1/models", { body: { id: "evil", path } });
      expect({ path, status, code: body.error.code }).toEqual({ path, status: 400, code: "PATH_NOT_ALLOWED" });
    }
    expect((await api.json("GET", "/api/v1/models/evil")).status).toBe(404);
  });

  test("a missing file or a bad id is a 400 with the zod issues", async () => {
    const missing = await api.json("POST", "/api/v1/models", { body: { id: "ghost", path: "ghost.onnx" } });
    expect(missing.status).toBe(400);
    expect(missing.body.error.code).toBe("MODEL_FILE_NOT_FOUND");
    const bad = await api.json("POST", "/api/v1/models", { body: { id: "Bad Id!", path: "affine.onnx" } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("VALIDATION_ERROR");
    expect(bad.body.error.details[0].path).toEqual(["id"]);
    const notJson = await api.json("POST", "/api/v1/models", { body: "{not json" });
    expect(notJson.status).toBe(400);
    expect(notJson.body.error.code).toBe("MALFORMED_JSON");
    const text = await api.json("POST", "/api/v1/models", { body: "id=x", headers: { "content-type": "text/plain" } });
    expect({ status: text.status, code: text.body.error.code }).toEqual({ status: 415, code: "UNSUPPORTED_MEDIA_TYPE" });
  });

  test("an empty body is no body whatever its Content-Type: an optional one is left out, a required one is missing fields", async () => {
    const json = { "content-type": "application/json" };
    // As `curl -X POST -H "Content-Type: application/json"` sends it: the type, and no body.
    const load = await api.json("POST", "/api/v1/models/affine/load", { headers: json });
    expect(load.status).toBe(202);
    await api.waitJob(load.body.id);
    const register = await api.json("POST", "/api/v1/models", { headers: { ...json, "content-length": "0" } });
    expect({ status: register.status, code: register.body.error.code }).toEqual({ status: 400, code: "VALIDATION_ERROR" });
    expect(register.body.error.message).toContain("id");
  });

  test("unknown model ids are 404 on every model route", async () => {
    for (const [method, path] of [
      ["GET", "/api/v1/models/nope"],
      ["POST", "/api/v1/models/nope/load"],
      ["POST", "/api/v1/models/nope/unload"],
      ["DELETE", "/api/v1/models/nope"],
    ] as const) {
      const { status, body } = await api.json(method, path);
      expect({ path, status, code: body.error.code }).toEqual({ path, status: 404, code: "MODEL_NOT_FOUND" });
      expect(body.error.requestId).toBeString();
    }
    expect((await api.json("GET", "/api/v1/jobs/job_nope")).body.error.code).toBe("JOB_NOT_FOUND");
  });
});

describe("load and unload jobs", () => {
  test("load → completed with metadata → unload → completed", async () => {
    const load = await api.json("POST", "/api/v1/models/affine/load");
    expect(load.status).toBe(202);
    expect(load.res.headers.get("location")).toBe(`/api/v1/jobs/${load.body.id}`);
    expect(load.body).toMatchObject({ kind: "load", modelId: "affine", state: "pending", error: null, requestedBy: "tester" });
    const done = await api.waitJob(load.body.id);
    expect(done).toMatchObject({ state: "completed", error: null });
    expect(done.startedAt).toBeString();
    expect(done.finishedAt).toBeString();

    const model = (await api.json("GET", "/api/v1/models/affine")).body;
    expect(model).toMatchObject({ state: "loaded", active: true });
    expect(model.inputs).toEqual([{ name: "x", type: "float32", shape: [-1, 4], dimNames: ["batch", null] }]);
    expect(model.outputs[0]).toMatchObject({ name: "y", type: "float32", shape: [-1, 4] });
    expect(svc.deps.runtime.get("affine")?.phase).toBe("ready");

    const del = await api.json("DELETE", "/api/v1/models/affine");
    expect(del.status).toBe(409);
    expect(del.body.error.code).toBe("MODEL_BUSY");

    const unload = await api.json("POST", "/api/v1/models/unload");
    expect(unload.status).toBe(202);
    expect(unload.body).toMatchObject({ kind: "unload", modelId: "affine" });
    expect((await api.waitJob(unload.body.id)).state).toBe("completed");
    expect((await api.json("GET", "/api/v1/models/affine")).body).toMatchObject({ state: "unloaded", active: false });
    expect(svc.deps.runtime.get("affine")).toBeUndefined();

    const nothing = await api.json("POST", "/api/v1/models/unload");
    expect(nothing.status).toBe(409);
    expect(nothing.body.error.code).toBe("NO_ACTIVE_MODEL");
    const notLoaded = await api.json("POST", "/api/v1/models/affine/unload");
    expect(notLoaded.body.error.code).toBe("MODEL_NOT_LOADED");
  });

  test("duplicate loads are coalesced into one job and one session", async () => {
    const responses = await Promise.all(Array.from({ length: 8 }, () => api.json("POST", "/api/v1/models/other/load")));
    const ids = new Set(responses.map((r) => r.body.id));
    expect(responses.every((r) => r.status === 202)).toBe(true);
    expect(ids.size).toBe(1);
    await api.waitJob([...ids][0]!);
    expect(svc.deps.runtime.size).toBe(1);

    // Loading a loaded model completes without a second session.
    const again = await api.json("POST", "/api/v1/models/other/load");
    expect(again.body.id).not.toBe([...ids][0]);
    const done = await api.waitJob(again.body.id);
    expect(done).toMatchObject({ state: "completed", outcome: { summary: "already-loaded" } });
    expect(svc.deps.runtime.size).toBe(1);
  });

  test("activate=false leaves the active model alone; named unload works", async () => {
    const a = await api.json("POST", "/api/v1/models/nested/load?activate=false");
    await api.waitJob(a.body.id);
    const models = (await api.json("GET", "/api/v1/models")).body.models;
    expect(models.filter((m: { active: boolean }) => m.active).map((m: { id: string }) => m.id)).toEqual(["other"]);
    const u = await api.json("POST", "/api/v1/models/nested/unload");
    expect((await api.waitJob(u.body.id)).state).toBe("completed");
  });

  test("force unload terminates the worker at once", async () => {
    const u = await api.json("POST", "/api/v1/models/unload?force=true");
    expect(u.status).toBe(202);
    expect(u.body).toMatchObject({ modelId: "other", force: true });
    const done = await api.waitJob(u.body.id);
    expect(done).toMatchObject({ state: "completed", outcome: { summary: "forced" } });
    expect(svc.deps.runtime.size).toBe(0);
    while (svc.deps.runtime.threads > 0) await Bun.sleep(5);
    expect((await api.json("GET", "/api/v1/models/other")).body.state).toBe("unloaded");
  });

  test("a corrupt model fails its job with ONNX Runtime's message; the server keeps serving", async () => {
    const load = await api.json("POST", "/api/v1/models/corrupt/load");
    const done = await api.waitJob(load.body.id);
    expect(done.state).toBe("failed");
    expect(done.error?.code).toBe("LOAD_FAILED");
    expect(done.error?.message).toMatch(/protobuf|parse|model/i);
    const model = (await api.json("GET", "/api/v1/models/corrupt")).body;
    expect(model.state).toBe("failed");
    expect(model.lastError.code).toBe("LOAD_FAILED");
    expect((await api.call("GET", "/health")).status).toBe(200);
    expect(svc.deps.runtime.size).toBe(0);
  });

  test("jobs are listed newest first with filters and a cursor", async () => {
    const all = (await api.json("GET", "/api/v1/jobs?limit=200")).body.jobs;
    expect(all.length).toBeGreaterThanOrEqual(6);
    const page1 = (await api.json("GET", "/api/v1/jobs?limit=2")).body;
    expect(page1.jobs.map((j: { id: string }) => j.id)).toEqual(all.slice(0, 2).map((j: { id: string }) => j.id));
    const page2 = (await api.json("GET", `/api/v1/jobs?limit=2&before=${page1.nextBefore}`)).body;
    expect(page2.jobs.map((j: { id: string }) => j.id)).toEqual(all.slice(2, 4).map((j: { id: string }) => j.id));
    const failed = (await api.json("GET", "/api/v1/jobs?state=failed&kind=load")).body.jobs;
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((j: { state: string; kind: string }) => j.state === "failed" && j.kind === "load")).toBe(true);
    expect((await api.json("GET", "/api/v1/jobs?limit=0")).status).toBe(400);
  });
});

describe("load timeout", () => {
  test("a load past MODELD_LOAD_TIMEOUT_MS fails with LOAD_TIMEOUT and frees the worker", async () => {
    const t2 = testEnv({ MODELD_LOAD_TIMEOUT_MS: "30", MODELD_VERIFY_CHECKSUM: "false" });
    writeModel(t2.modelDir, "big.onnx", bigModel(120));
    const svc2 = await startTestService(t2);
    try {
      const api2 = await client(svc2);
      const load = await api2.json("POST", "/api/v1/models/big/load");
      const done = await api2.waitJob(load.body.id);
      expect(done.state).toBe("failed");
      expect(done.error?.code).toBe("LOAD_TIMEOUT");
      expect(svc2.deps.runtime.size).toBe(0);
      // ONNX Runtime cannot be interrupted; the thread releases and ends once it returns.
      const deadline = Date.now() + 20_000;
      while (svc2.deps.runtime.threads > 0 && Date.now() < deadline) await Bun.sleep(20);
      expect(svc2.deps.runtime.threads).toBe(0);
      // A new load of the same model is not blocked by the abandoned one.
      expect((await api2.json("GET", "/health")).status).toBe(200);
      expect((await api2.json("GET", "/api/v1/models/big")).body.state).toBe("failed");
    } finally {
      await svc2.close();
      cleanup(t2);
    }
  });
});
