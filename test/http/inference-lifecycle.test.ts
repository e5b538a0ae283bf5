import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { loadConfig } from "../../src/config";
import { createLogger } from "../../src/log";
import { startService, type Service } from "../../src/server";
import { affineModel, bigModel, matmulChainModel } from "../fixtures/onnx-builder";
import { cleanup, client, startTestService, testEnv, token, writeModel, type Client, type TestEnv } from "../helpers";

const N = 512;
const slowBody = () => ({ inputs: [{ name: "x", datatype: "FP32", shape: [1, N], data: new Array(N).fill(1) }] });

let t: TestEnv;
let svc: Service;
let api: Client;
let infer: string;

async function loadModel(id: string) {
  const done = await api.waitJob((await api.json("POST", `/api/v1/models/${id}/load`)).body.id);
  expect(done.state).toBe("completed");
}

beforeAll(async () => {
  t = testEnv({ MODELD_MAX_QUEUE_PER_MODEL: "64" });
  writeModel(t.modelDir, "slow.onnx", matmulChainModel(N, 150));
  writeModel(t.modelDir, "affine.onnx", affineModel());
  writeModel(t.modelDir, "broken.onnx", "garbage");
  svc = await startTestService(t);
  api = await client(svc);
  infer = await token({ role: "infer" });
});
afterAll(async () => {
  await svc.close();
  cleanup(t);
});

const fire = (n: number) =>
  Array.from({ length: n }, () => api.json("POST", "/v2/models/slow/infer", { token: infer, body: slowBody() }).then((r) => r));

describe("inference during unload", () => {
  test("graceful unload lets every accepted request finish; later ones get 503 or 400, never 5xx", async () => {
    await loadModel("slow");
    const accepted = fire(24);
    // Accepted means in flight on the model's session, not merely sent.
    for (let i = 0; (svc.deps.runtime.get("slow")?.inflight ?? 0) < 24 && i < 2000; i++) await Bun.sleep(1);
    const unload = await api.json("POST", "/api/v1/models/slow/unload");
    const late = await api.json("POST", "/v2/models/slow/infer", { token: infer, body: slowBody() });
    const results = await Promise.all(accepted);
    expect(results.map((r) => r.status)).toEqual(new Array(24).fill(200));
    expect([503, 400]).toContain(late.status);
    expect(Object.keys(late.body)).toEqual(["error"]);
    expect((await api.waitJob(unload.body.id)).outcome?.summary).toBe("released");
  });

  test("force unload fails the rest cleanly with 503", async () => {
    await loadModel("slow");
    const inflight = fire(24);
    await Bun.sleep(20);
    const unload = await api.json("POST", "/api/v1/models/slow/unload?force=true");
    const results = await Promise.all(inflight);
    const statuses = results.map((r) => r.status);
    expect(statuses.every((s) => s === 200 || s === 503)).toBe(true);
    expect(statuses).toContain(503);
    const failed = results.find((r) => r.status === 503)!;
    expect(failed.body.error).toContain("unloading");
    expect((await api.waitJob(unload.body.id)).outcome?.summary).toBe("forced");
    expect(svc.deps.runtime.size).toBe(0);
  });

  test("a full per-model queue answers 503 with Retry-After, and logs no error per refused request", async () => {
    const t2 = testEnv({ MODELD_MAX_QUEUE_PER_MODEL: "2" });
    writeModel(t2.modelDir, "slow.onnx", matmulChainModel(N, 150));
    // Each refusal was an error line with a stack: 13,000 lines (10 MB) in 5 s of overload through wrk.
    const lines: { level: string; msg: string }[] = [];
    const svc2 = await startService(loadConfig(t2.env), createLogger("info", {}, (l) => lines.push(JSON.parse(l))));
    try {
      const api2 = await client(svc2);
      await api2.waitJob((await api2.json("POST", "/api/v1/models/slow/load")).body.id);
      const results = await Promise.all(Array.from({ length: 12 }, () => api2.json("POST", "/v2/models/slow/infer", { body: slowBody() })));
      const full = results.filter((r) => r.status === 503);
      expect(full.length).toBeGreaterThan(0);
      expect(full[0]!.res.headers.get("retry-after")).toBe("1");
      expect(results.every((r) => r.status === 200 || r.status === 503)).toBe(true);
      expect(lines.filter((l) => l.level === "error")).toEqual([]);
    } finally {
      await svc2.close();
      cleanup(t2);
    }
  });
});

describe("Triton model repository extension", () => {
  test("index, load and unload run through the job system and answer when done", async () => {
    const load = await api.json("POST", "/v2/repository/models/affine/load");
    expect(load.status).toBe(200);
    expect(load.body).toEqual({});
    const index = (await api.json("POST", "/v2/repository/index")).body;
    expect(index).toContainEqual({ name: "affine", version: "1", state: "READY", reason: "" });
    const jobs = (await api.json("GET", "/api/v1/jobs?modelId=affine&limit=1")).body.jobs;
    expect(jobs[0]).toMatchObject({ kind: "load", state: "completed", requestedBy: "tester" });

    expect((await api.json("POST", "/v2/repository/models/affine/unload")).status).toBe(200);
    expect((await api.json("POST", "/v2/repository/index")).body).toContainEqual({ name: "affine", version: "1", state: "UNAVAILABLE", reason: "unloaded" });
    expect((await api.json("POST", "/v2/repository/models/affine/unload")).status).toBe(200); // already unloaded
  });

  test("a failed load answers 400 with the job's error", async () => {
    const res = await api.json("POST", "/v2/repository/models/broken/load");
    expect(res.status).toBe(400);
    expect(res.body.error).toContain("failed to load broken");
    expect((await api.json("POST", "/v2/repository/models/ghost/load")).status).toBe(404);
    expect((await api.json("POST", "/v2/repository/index", { token: null })).status).toBe(401);
  });
});

describe("the HTTP thread is never blocked by ONNX Runtime", () => {
  test("health keeps answering while a large model loads", async () => {
    writeModel(t.modelDir, "big/model.onnx", bigModel(300));
    await api.json("POST", "/api/v1/models", { body: { id: "big", path: "big/model.onnx" } });
    const job = (await api.json("POST", "/api/v1/models/big/load")).body;
    let answeredWhileLoading = 0;
    let worst = 0;
    for (;;) {
      const started = performance.now();
      const health = await api.json("GET", "/v2/health/ready", { token: null });
      worst = Math.max(worst, performance.now() - started);
      expect(health.status).toBe(200);
      const state = (await api.json("GET", `/api/v1/jobs/${job.id}`)).body.state;
      if (state !== "running" && state !== "pending") break;
      if (state === "running") answeredWhileLoading++;
      await Bun.sleep(10);
    }
    expect((await api.json("GET", `/api/v1/jobs/${job.id}`)).body.state).toBe("completed");
    // A blocked event loop would answer once at most, after the load.
    expect(answeredWhileLoading).toBeGreaterThanOrEqual(5);
    console.log(`health answered ${answeredWhileLoading} times during the load; slowest ${worst.toFixed(1)} ms`);
  }, 60_000);
});
