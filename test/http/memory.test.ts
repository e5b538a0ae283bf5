// Memory as a managed resource: measured footprints, a budget with LRU
// eviction, in-flight and pinning protection, idle expiry and on-demand loads.
import { describe, expect, setSystemTime, test } from "bun:test";
import type { Service } from "../../src/server";
import { affineModel, bigExternalModel, bigModel, matmulChainModel } from "../fixtures/onnx-builder";
import { cleanup, client, startTestService, testEnv, token, writeModel, type Client, type TestEnv } from "../helpers";

/**
 * Footprints are RSS deltas of this process, so memory that an earlier test
 * file's threads are still giving back would be subtracted from them. Wait
 * until RSS holds still (within 1 MiB for 500 ms, at most 10 s) before starting:
 * one quiet 100 ms was not enough, a load once measured 0 bytes when a session
 * of an earlier file was released during it. A full collection first, so that
 * earlier files' garbage (other tests write models of 100+ MiB from buffers) is not
 * freed in the middle of a load: a full CI run once measured 0 bytes here again,
 * which running this file alone did not reproduce.
 */
async function settledMemory(): Promise<void> {
  Bun.gc(true);
  let since = process.memoryUsage.rss();
  let quiet = 0;
  for (let i = 0; i < 100 && quiet < 5; i++) {
    await Bun.sleep(100);
    const now = process.memoryUsage.rss();
    quiet = Math.abs(now - since) < 1024 * 1024 ? quiet + 1 : 0;
    if (quiet === 0) since = now;
  }
}

async function withService(env: Record<string, string>, models: Record<string, Uint8Array | string>, run: (api: Client, svc: Service, t: TestEnv) => Promise<void>) {
  await settledMemory();
  const t = testEnv(env);
  for (const [rel, bytes] of Object.entries(models)) writeModel(t.modelDir, rel, bytes);
  const svc = await startTestService(t);
  try {
    await run(await client(svc), svc, t);
  } finally {
    await svc.close();
    cleanup(t);
  }
}

const load = async (api: Client, id: string) => api.waitJob((await api.json("POST", `/api/v1/models/${id}/load?activate=false`)).body.id);
const model = async (api: Client, id: string) => (await api.json("GET", `/api/v1/models/${id}`)).body;
const gatherBody = { inputs: [{ name: "i", datatype: "INT64", shape: [1], data: [7] }] };
// About 50 MB each (measured ~1.0× on CPU), so a 140 MiB budget holds two, not three.
const three = { "a.onnx": bigModel(50), "b.onnx": bigModel(51), "c.onnx": bigModel(60) };

describe("footprints", () => {
  test("a load measures its cost and an unload what came back; both are on the jobs and the model", async () => {
    await withService({}, three, async (api) => {
      const fresh = await model(api, "a");
      expect(fresh.estimatedBytes).toBe(Math.ceil(fresh.sizeBytes * 1.2)); // never loaded: size × 1.2
      const loaded = await load(api, "a");
      expect(Number.isInteger(loaded.outcome!.memoryBytes)).toBe(true);
      expect(loaded.outcome!.memoryBytes).toBeGreaterThan(25 * 1024 * 1024);
      const m = await model(api, "a");
      // The measurement is the estimate from now on, for this file's bytes, never below the file's size.
      const estimate = Math.max(loaded.outcome!.memoryBytes!, m.sizeBytes);
      expect(m).toMatchObject({ memoryBytes: loaded.outcome!.memoryBytes, estimatedBytes: estimate, lastUsedAt: expect.any(String), expiresAt: null });
      const unloaded = await api.waitJob((await api.json("POST", "/api/v1/models/a/unload")).body.id);
      expect(Number.isInteger(unloaded.outcome!.reclaimedBytes)).toBe(true);
      expect(unloaded.outcome!.reclaimedBytes).toBeGreaterThan(25 * 1024 * 1024);
      expect(await model(api, "a")).toMatchObject({ memoryBytes: null, estimatedBytes: estimate, lastUsedAt: null });
    });
  }, 60_000);
});

describe("budget and eviction", () => {
  test("loading C over the budget evicts the least recently used idle model, as a system job with a reason", async () => {
    await withService({ MODELD_MEMORY_BUDGET: "140MiB" }, three, async (api) => {
      expect((await load(api, "a")).state).toBe("completed");
      expect((await load(api, "b")).state).toBe("completed");
      expect((await api.json("POST", "/v2/models/a/infer", { body: gatherBody })).status).toBe(200); // A is now the most recently used
      const c = await load(api, "c");
      expect(c.state).toBe("completed");
      const evictions = (await api.json("GET", "/api/v1/jobs?reason=evicted")).body.jobs;
      expect(evictions).toHaveLength(1);
      expect(evictions[0]).toMatchObject({ kind: "unload", modelId: "b", state: "completed", requestedBy: "system", reason: { kind: "evicted", for: "c@1" } });
      expect(evictions[0].outcome.reclaimedBytes).toBeGreaterThanOrEqual(0);
      expect((await model(api, "b")).state).toBe("unloaded");
      for (const id of ["a", "c"]) expect((await api.json("POST", `/v2/models/${id}/infer`, { body: gatherBody })).status).toBe(200);
      const loaded = (await api.json("GET", "/api/v1/models?state=loaded")).body.models.map((m: any) => m.id);
      expect(loaded).toEqual(["c", "a"]); // most recently used first
      // People's jobs carry no reason.
      expect((await api.json("GET", `/api/v1/jobs/${c.id}`)).body.reason).toBeNull();
      const audit = (await api.json("GET", "/api/v1/audit?limit=50")).body.entries;
      expect(audit).toContainEqual(expect.objectContaining({ actor: "system", action: "unload b: evicted for c@1", target: "b", status: 0, outcome: "ok", requestId: evictions[0].id }));
    });
  }, 60_000);

  test("a model whose weights are in an external data file is admitted for their size, not its tiny model file's", async () => {
    const files = (dir: string, m: ReturnType<typeof bigExternalModel>) => Object.fromEntries(Object.entries(m).map(([f, b]) => [`${dir}/${f}`, b]));
    await withService({ MODELD_MEMORY_BUDGET: "140MiB" }, { ...files("wide", bigExternalModel(160)), ...files("fits", bigExternalModel(50)) }, async (api) => {
      const wide = await model(api, "wide");
      expect(wide.sizeBytes).toBeGreaterThan(160 * 1024 * 1024);
      const refused = await load(api, "wide");
      expect(refused).toMatchObject({ state: "failed", error: { code: "INSUFFICIENT_MEMORY" } });
      expect(refused.error!.message).toStartWith("wide@1 needs 19"); // 1.2 × 160 MiB
      expect((await load(api, "fits")).state).toBe("completed");
      expect((await api.json("POST", "/v2/models/fits/infer", { body: gatherBody })).body.outputs[0].data).toEqual([8]);
    });
  }, 60_000);

  test("pinned models are never evicted; when only they stand in the way the load fails INSUFFICIENT_MEMORY naming them", async () => {
    await withService({ MODELD_MEMORY_BUDGET: "140MiB" }, three, async (api) => {
      for (const id of ["a", "b"]) {
        await load(api, id);
        expect((await api.json("PATCH", `/api/v1/models/${id}`, { body: { pinned: true } })).body.pinned).toBe(true);
      }
      const c = await load(api, "c");
      expect(c).toMatchObject({ state: "failed", error: { code: "INSUFFICIENT_MEMORY" } });
      expect(c.error!.message).toMatch(/needs .* bytes/);
      expect(c.error!.message).toContain("a@1");
      expect(c.error!.message).toContain("b@1");
      expect(c.error!.message).toContain("pinned");
      expect(await model(api, "c")).toMatchObject({ state: "failed", lastError: { code: "INSUFFICIENT_MEMORY" } });
      for (const id of ["a", "b"]) expect((await model(api, id)).state).toBe("loaded");
      expect((await api.json("GET", "/api/v1/jobs?reason=evicted")).body.jobs).toEqual([]);
      // Unpinned, B gives way.
      await api.json("PATCH", "/api/v1/models/b", { body: { pinned: false } });
      expect((await load(api, "c")).state).toBe("completed");
      expect((await model(api, "b")).state).toBe("unloaded");
    });
  }, 60_000);

  test("a model with requests in flight is skipped: the next least recently used gives way", async () => {
    const N = 512;
    await withService({ MODELD_MEMORY_BUDGET: "140MiB", MODELD_MAX_QUEUE_PER_MODEL: "64" }, { ...three, "slow.onnx": matmulChainModel(N, 150), "c.onnx": bigModel(90) }, async (api, svc) => {
      await load(api, "slow"); // loaded first: the least recently used
      await load(api, "a");
      const infer = await token({ role: "infer" });
      const busy = Array.from({ length: 40 }, () => api.json("POST", "/v2/models/slow/infer", { token: infer, body: { inputs: [{ name: "x", datatype: "FP32", shape: [1, N], data: new Array(N).fill(1) }] } }));
      for (let i = 0; (svc.deps.runtime.get("slow")?.inflight ?? 0) < 10 && i < 2000; i++) await Bun.sleep(1);
      const c = await load(api, "c");
      expect(c.state).toBe("completed");
      expect((await api.json("GET", "/api/v1/jobs?reason=evicted")).body.jobs.map((j: any) => j.modelId)).toEqual(["a"]);
      expect((await Promise.all(busy)).every((r) => r.status === 200)).toBe(true);
      expect((await model(api, "slow")).state).toBe("loaded");
    });
  }, 60_000);

  test("MODELD_MEMORY_BUDGET refuses what is not a size", () => {
    for (const bad of ["lots", "10XB", "0", "150%", "-5MiB"]) {
      const r = Bun.spawnSync([process.execPath, "src/main.ts", "migrate"], { env: { ...process.env, MODELD_MEMORY_BUDGET: bad, MODELD_DATA_DIR: "/nonexistent" }, cwd: `${import.meta.dir}/../..` });
      expect({ bad, code: r.exitCode, err: r.stderr.toString().includes("MODELD_MEMORY_BUDGET") }).toEqual({ bad, code: 1, err: true });
    }
  });
});

describe("idle expiry", () => {
  test("keepAlive 1s unloads a model after a second idle; a request in between resets the clock", async () => {
    await withService({}, { "m.onnx": affineModel() }, async (api) => {
      expect((await api.json("PATCH", "/api/v1/models/m", { body: { keepAlive: "1s" } })).body.keepAlive).toBe("1s");
      await load(api, "m");
      const body = { inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }] };
      for (let i = 0; i < 3; i++) {
        await Bun.sleep(600);
        expect((await api.json("POST", "/v2/models/m/infer", { body })).status).toBe(200);
      }
      const m = await model(api, "m");
      expect(m.state).toBe("loaded");
      expect(Date.parse(m.expiresAt) - Date.parse(m.lastUsedAt)).toBe(1000);
      for (let i = 0; (await model(api, "m")).state !== "unloaded" && i < 100; i++) await Bun.sleep(50);
      expect((await model(api, "m")).state).toBe("unloaded");
      const idle = (await api.json("GET", "/api/v1/jobs?reason=idle")).body.jobs;
      expect(idle).toHaveLength(1);
      expect(idle[0]).toMatchObject({ kind: "unload", modelId: "m", requestedBy: "system", reason: { kind: "idle" } });
      const audit = (await api.json("GET", "/api/v1/audit?limit=5")).body.entries;
      expect(audit).toContainEqual(expect.objectContaining({ actor: "system", target: "m", status: 0, requestId: idle[0].id }));
      expect(Number.isInteger((await api.waitJob(idle[0].id)).outcome!.reclaimedBytes)).toBe(true);
      for (const bad of ["soon", "1d", "-2", "5 m"]) expect((await api.json("PATCH", "/api/v1/models/m", { body: { keepAlive: bad } })).status).toBe(400);
    });
  }, 30_000);

  test("keepAlive counts on a clock that never steps: a wall-clock step neither expires a model nor keeps it", async () => {
    // bun:test's setSystemTime steps (and holds) Date alone, as NTP or a resumed VM steps the wall clock.
    await withService({}, { "m.onnx": affineModel() }, async (api) => {
      try {
        await api.json("PATCH", "/api/v1/models/m", { body: { keepAlive: "2m" } });
        await load(api, "m");
        setSystemTime(new Date(Date.now() + 9 * 60_000));
        await Bun.sleep(700);
        const m = await model(api, "m");
        expect(m.state).toBe("loaded");
        expect(Date.parse(m.expiresAt) - Date.now()).toBeGreaterThan(100_000);

        await api.json("PATCH", "/api/v1/models/m", { body: { keepAlive: "1s" } });
        setSystemTime(new Date(Date.now() - 3_600_000));
        for (let i = 0; (await model(api, "m")).state !== "unloaded" && i < 60; i++) await Bun.sleep(50);
        expect((await model(api, "m")).state).toBe("unloaded");
      } finally {
        setSystemTime();
      }
    });
  }, 30_000);

  test("a pinned model and the default keepAlive (-1) never expire", async () => {
    await withService({ MODELD_KEEP_ALIVE: "300ms" }, { "p.onnx": affineModel(), "q.onnx": affineModel() }, async (api) => {
      await api.json("PATCH", "/api/v1/models/p", { body: { pinned: true } });
      await api.json("PATCH", "/api/v1/models/q", { body: { keepAlive: "-1" } });
      await load(api, "p");
      await load(api, "q");
      await Bun.sleep(1200);
      expect((await model(api, "p")).state).toBe("loaded");
      expect((await model(api, "q")).state).toBe("loaded");
      expect((await api.json("GET", "/api/v1/jobs?reason=idle")).body.jobs).toEqual([]);
    });
  }, 30_000);
});

describe("on-demand loads", () => {
  test("8 concurrent requests to an unloaded model share one load job and all succeed", async () => {
    await withService({ MODELD_LOAD_ON_DEMAND: "true" }, { "m.onnx": affineModel(), "broken.onnx": "not a model" }, async (api) => {
      const body = { inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }] };
      const results = await Promise.all(Array.from({ length: 8 }, () => api.json("POST", "/v2/models/m/infer", { body })));
      expect(results.map((r) => r.status)).toEqual(new Array(8).fill(200));
      expect(results[0]!.body.outputs[0].data).toEqual([3, 5, 7, 9]);
      const jobs = (await api.json("GET", "/api/v1/jobs?modelId=m")).body.jobs;
      expect(jobs).toHaveLength(1);
      expect(jobs[0]).toMatchObject({ kind: "load", state: "completed", reason: { kind: "on-demand" }, activate: false });

      // A load that fails answers every waiting request with its error, at once, not at the end of the wait.
      const started = Date.now();
      const failed = await Promise.all(Array.from({ length: 4 }, () => api.json("POST", "/v2/models/broken/infer", { body })));
      expect(Date.now() - started).toBeLessThan(10_000);
      for (const r of failed) {
        expect(r.status).toBe(400);
        expect(r.body.error).toMatch(/protobuf|parse|model/i);
      }
      expect((await api.json("GET", "/api/v1/jobs?modelId=broken")).body.jobs).toHaveLength(1);
      // Unknown models stay 404; /api/v1 keeps its error shape.
      expect((await api.json("POST", "/v2/models/ghost/infer", { body })).status).toBe(404);
      expect((await api.json("POST", "/api/v1/models/broken/predict", { body })).body.error.code).toBe("MODEL_LOAD_FAILED");
    });
  }, 30_000);

  test("a load that outlasts MODELD_ON_DEMAND_WAIT_MS answers 503 with Retry-After; off by default", async () => {
    await withService({ MODELD_LOAD_ON_DEMAND: "true", MODELD_ON_DEMAND_WAIT_MS: "20", MODELD_VERIFY_CHECKSUM: "false" }, { "big.onnx": bigModel(150) }, async (api) => {
      const res = await api.json("POST", "/v2/models/big/infer", { body: gatherBody });
      expect(res.status).toBe(503);
      expect(res.res.headers.get("retry-after")).toBe("1");
      await api.waitJob((await api.json("GET", "/api/v1/jobs?modelId=big")).body.jobs[0].id);
      expect((await api.json("POST", "/v2/models/big/infer", { body: gatherBody })).status).toBe(200);
    });
    await withService({}, { "m.onnx": affineModel() }, async (api) => {
      const body = { inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }] };
      expect((await api.json("POST", "/v2/models/m/infer", { body })).status).toBe(400);
      expect((await api.json("GET", "/api/v1/jobs")).body.jobs).toEqual([]);
    });
  }, 30_000);
});
