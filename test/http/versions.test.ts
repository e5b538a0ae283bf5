// Versions: registered from Triton's layout, the API and rescans; loaded by
// number; swapped without downtime; inference and metadata per version.
import { describe, expect, test } from "bun:test";
import { readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createLogger } from "../../src/log";
import { affineModel, bigExternalModel, reshapeBy3Model } from "../fixtures/onnx-builder";
import { client, startTestService, testEnv, token, useService, writeModel, cleanup, type Client, type TestEnv } from "../helpers";

/** v1 answers 2x+1, v2 answers 3x-1: every response tells which version ran. */
const V1 = affineModel(2, 1);
const V2 = affineModel(3, -1);

/** One row for the affine models V1 and V2: V1 answers [3, 5, 7, 9], V2 [2, 5, 8, 11]. */
const X = { inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }] };

/** A service over a model dir `prepare` fills, handed to `body` with an admin client, then stopped and removed. */
async function onModelDir(prepare: (t: TestEnv) => void, body: (api: Client, t: TestEnv) => Promise<void>): Promise<void> {
  const t = testEnv();
  prepare(t);
  const service = await startTestService(t);
  try {
    await body(await client(service), t);
  } finally {
    await service.close();
    cleanup(t);
  }
}
const expected = (version: string, x: number[]) => x.map((v) => (version === "1" ? 2 * v + 1 : 3 * v - 1));
const body = (x = [1, 2, 3, 4]) => ({ inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: x }] });

const svc = useService({}, (t) => {
  writeModel(t.modelDir, "tri/1/model.onnx", V1);
  writeModel(t.modelDir, "tri/2/model.onnx", V2);
  writeModel(t.modelDir, "tri/config.pbtxt", 'name: "tri"');
  writeModel(t.modelDir, "plain.onnx", V1);
  writeModel(t.modelDir, "warm/model.onnx", reshapeBy3Model());
});

const load = async (id: string, version?: string) => {
  const res = await svc.api.json("POST", `/api/v1/models/${id}/load`, version === undefined ? {} : { body: { version } });
  expect(res.status).toBe(202);
  return svc.api.waitJob(res.body.id);
};
const model = async (id: string) => (await svc.api.json("GET", `/api/v1/models/${id}`)).body;
const phases = (job: { timeline: { phase: string }[] }) => job.timeline.map((p) => p.phase);

describe("registering versions", () => {
  test("Triton's layout <id>/<n>/model.onnx is scanned as numbered versions; the flat layouts are version 1", async () => {
    const tri = await model("tri");
    expect(tri.versions.map((v: any) => [v.version, v.state, v.path])).toEqual([
      ["1", "unloaded", "tri/1/model.onnx"],
      ["2", "unloaded", "tri/2/model.onnx"],
    ]);
    expect(tri).toMatchObject({ servingVersion: null, path: "tri/2/model.onnx", state: "unloaded", warmup: { runs: 0 }, providers: null });
    expect(tri.versions[1].sha256).toMatch(/^[0-9a-f]{64}$/);
    expect((await model("plain")).versions.map((v: any) => v.version)).toEqual(["1"]);
  });

  test("POST /models/{id}/versions registers a file as the next version, with the same path rules", async () => {
    writeModel(svc.t.modelDir, "plain-next.onnx", V2);
    const added = await svc.api.json("POST", "/api/v1/models/plain/versions", { body: { path: "plain-next.onnx" } });
    expect(added.status).toBe(201);
    expect(added.body.versions.map((v: any) => [v.version, v.path])).toEqual([["1", "plain.onnx"], ["2", "plain-next.onnx"]]);
    const named = await svc.api.json("POST", "/api/v1/models/plain/versions", { body: { path: "plain-next.onnx", version: "7" } });
    expect(named.body.versions.map((v: any) => v.version)).toEqual(["1", "2", "7"]);

    const cases: [unknown, number, string][] = [
      [{ path: "plain.onnx", version: "2" }, 409, "MODEL_VERSION_EXISTS"],
      [{ path: "../outside.onnx" }, 400, "PATH_NOT_ALLOWED"],
      [{ path: "nothing-here.onnx" }, 400, "MODEL_FILE_NOT_FOUND"],
      [{ path: "plain.onnx", version: "0" }, 400, "VALIDATION_ERROR"],
      [{ path: "plain.onnx", version: 3 }, 400, "VALIDATION_ERROR"],
      [{ path: "plain.onnx", extra: true }, 400, "VALIDATION_ERROR"],
    ];
    for (const [b, status, code] of cases) {
      const res = await svc.api.json("POST", "/api/v1/models/plain/versions", { body: b });
      expect({ b, status: res.status, code: res.body.error.code }).toEqual({ b, status, code });
    }
    expect((await svc.api.json("POST", "/api/v1/models/ghost/versions", { body: { path: "plain.onnx" } })).status).toBe(404);
    expect((await svc.api.json("POST", "/api/v1/models/plain/versions", { body: { path: "plain.onnx" }, token: await token({ role: "infer" }) })).status).toBe(403);
  });

  test("POST /models/rescan picks up new version folders without a restart; admin only, audited", async () => {
    writeModel(svc.t.modelDir, "tri/9/model.onnx", V1);
    writeModel(svc.t.modelDir, "fresh/1/model.onnx", V1);
    const infer = await token({ role: "infer" });
    expect((await svc.api.json("POST", "/api/v1/models/rescan", { token: infer })).status).toBe(403);
    const res = await svc.api.json("POST", "/api/v1/models/rescan");
    expect(res.status).toBe(200);
    expect(res.body.added).toEqual([
      { id: "fresh", version: "1" },
      { id: "tri", version: "9" },
    ]);
    expect((await svc.api.json("POST", "/api/v1/models/rescan")).body).toEqual({ added: [], updated: [], skipped: [] });
    expect((await model("tri")).versions.map((v: any) => v.version)).toEqual(["1", "2", "9"]);
    const audit = (await svc.api.json("GET", "/api/v1/audit?limit=3")).body.entries;
    expect(audit.map((e: any) => [e.action, e.status])).toContainEqual(["POST /api/v1/models/rescan", 200]);
    expect(audit.map((e: any) => [e.actor, e.status])).toContainEqual(["tester", 403]);
  });
});

describe("loading versions", () => {
  test("a load names its version in the body; without one the newest loads; bad versions are 404 and 400", async () => {
    for (const [b, status, code] of [
      [{ version: "42" }, 404, "MODEL_VERSION_NOT_FOUND"],
      [{ version: "two" }, 400, "VALIDATION_ERROR"],
      [{ version: 2 }, 400, "VALIDATION_ERROR"],
      [{ version: "2", extra: 1 }, 400, "VALIDATION_ERROR"],
    ] as const) {
      const res = await svc.api.json("POST", "/api/v1/models/fresh/load", { body: b });
      expect({ b, status: res.status, code: res.body.error.code }).toEqual({ b, status, code });
    }
    const done = await load("fresh");
    expect(done).toMatchObject({ state: "completed", version: "1", outcome: { summary: "loaded on cpu", version: "1" } });
    expect(phases(done)).toEqual(["queued", "verifying", "creating_session", "switching"]);
    await svc.api.waitJob((await svc.api.json("POST", "/api/v1/models/fresh/unload")).body.id);
  });

  test("serving v2: inference, metadata, readiness and the repository index answer per version", async () => {
    const done = await load("tri", "2");
    expect(done.state).toBe("completed");
    const m = await model("tri");
    expect(m).toMatchObject({ state: "loaded", servingVersion: "2", path: "tri/2/model.onnx" });
    expect(m.versions.map((v: any) => [v.version, v.state])).toEqual([["1", "unloaded"], ["2", "loaded"], ["9", "unloaded"]]);

    const plain = await svc.api.json("POST", "/v2/models/tri/infer", { body: body() });
    expect(plain.body).toMatchObject({ model_name: "tri", model_version: "2", outputs: [{ data: expected("2", [1, 2, 3, 4]) }] });
    const v2 = await svc.api.json("POST", "/v2/models/tri/versions/2/infer", { body: body() });
    expect(v2.body.model_version).toBe("2");
    const v1 = await svc.api.json("POST", "/v2/models/tri/versions/1/infer", { body: body() });
    expect(v1.status).toBe(400);
    expect(v1.body.error).toContain("version 1 is not loaded");
    expect((await svc.api.json("POST", "/v2/models/tri/versions/5/infer", { body: body() })).status).toBe(404);
    expect((await svc.api.json("POST", "/api/v1/models/tri/predict", { body: body() })).body.model_version).toBe("2");

    const meta = (await svc.api.json("GET", "/v2/models/tri")).body;
    expect(meta).toMatchObject({ name: "tri", versions: ["1", "2", "9"], inputs: [{ name: "x", datatype: "FP32", shape: [-1, 4] }] });
    expect((await svc.api.json("GET", "/v2/models/tri/versions/2")).status).toBe(200);
    expect((await svc.api.json("GET", "/v2/models/tri/versions/1")).status).toBe(400); // never loaded: inputs unknown
    expect((await svc.api.json("GET", "/v2/models/tri/versions/5")).status).toBe(404);
    expect((await svc.api.json("GET", "/v2/models/tri/versions/2/ready")).status).toBe(200);
    expect((await svc.api.json("GET", "/v2/models/tri/versions/1/ready")).status).toBe(400);
    expect((await svc.api.json("GET", "/v2/models/tri/versions/5/ready")).status).toBe(404);

    const index = (await svc.api.json("POST", "/v2/repository/index")).body.filter((e: any) => e.name === "tri");
    expect(index).toEqual([
      { name: "tri", version: "1", state: "UNAVAILABLE", reason: "unloaded" },
      { name: "tri", version: "2", state: "READY", reason: "" },
      { name: "tri", version: "9", state: "UNAVAILABLE", reason: "unloaded" },
    ]);
    const ready = (await svc.api.json("POST", "/v2/repository/index", { body: { ready: true } })).body;
    expect(ready.every((e: any) => e.state === "READY")).toBe(true);
    expect(ready).toContainEqual({ name: "tri", version: "2", state: "READY", reason: "" });
  });

  test("loading another version swaps: created beside the old one, switched in, the old one drained and released", async () => {
    const done = await load("tri", "1");
    expect(done).toMatchObject({ state: "completed", outcome: { summary: "loaded on cpu", version: "1", replaced: { version: "2", release: "released" } } });
    expect(phases(done)).toEqual(["queued", "verifying", "creating_session", "switching", "draining", "releasing"]);
    const m = await model("tri");
    expect(m).toMatchObject({ state: "loaded", servingVersion: "1" });
    expect(m.versions.map((v: any) => [v.version, v.state])).toEqual([["1", "loaded"], ["2", "unloaded"], ["9", "unloaded"]]);
    const out = (await svc.api.json("POST", "/v2/models/tri/infer", { body: body() })).body;
    expect(out).toMatchObject({ model_version: "1", outputs: [{ data: expected("1", [1, 2, 3, 4]) }] });
    // The released session's thread ends: one session per model once the swap is over.
    for (let i = 0; svc.svc.deps.runtime.threadsOf("tri") > 1 && i < 500; i++) await Bun.sleep(10);
    expect(svc.svc.deps.runtime.threadsOf("tri")).toBe(1);
    expect((await load("tri", "1")).outcome).toEqual({ summary: "already-loaded", version: "1" });
  });

  test("a swap to a corrupt version fails with the reason; the old version keeps serving, untouched", async () => {
    writeModel(svc.t.modelDir, "tri-broken.onnx", "not an onnx file");
    const added = await svc.api.json("POST", "/api/v1/models/tri/versions", { body: { path: "tri-broken.onnx", version: "3" } });
    expect(added.status).toBe(201);
    const done = await load("tri", "3");
    expect(done).toMatchObject({ state: "failed", version: "3", error: { code: "LOAD_FAILED" }, outcome: null });
    const m = await model("tri");
    expect(m).toMatchObject({ state: "loaded", servingVersion: "1", lastError: null });
    const v3 = m.versions.find((v: any) => v.version === "3");
    expect(v3).toMatchObject({ state: "failed", lastError: { code: "LOAD_FAILED" } });
    expect((await svc.api.json("POST", "/v2/models/tri/infer", { body: body() })).body.model_version).toBe("1");
    // A load without a version takes the newest, even one that failed before.
    const newest = await svc.api.json("POST", "/api/v1/models/tri/load");
    expect(newest.body.version).toBe("9");
    await svc.api.waitJob(newest.body.id);
  });

  test("a version that does not serve can be removed; one that serves, or the last one, cannot", async () => {
    const serving = (await model("tri")).servingVersion;
    const del = (v: string) => svc.api.json("DELETE", `/api/v1/models/tri/versions/${v}`);
    const busy = await del(serving);
    expect({ status: busy.status, code: busy.body.error.code }).toEqual({ status: 409, code: "MODEL_BUSY" });
    expect((await del("3")).status).toBe(204); // the corrupt one
    expect((await model("tri")).versions.map((v: any) => v.version)).not.toContain("3");
    expect((await del("3")).status).toBe(404);
    expect((await del("nope")).status).toBe(404);
    expect((await svc.api.json("DELETE", "/api/v1/models/tri/versions/9", { token: await token({ role: "infer" }) })).status).toBe(403);
    const only = await svc.api.json("DELETE", "/api/v1/models/fresh/versions/1");
    expect({ status: only.status, code: only.body.error.code }).toEqual({ status: 409, code: "MODEL_BUSY" });
    expect(only.body.error.message).toContain("only version");
  });

  test("swaps queued for one model run in order", async () => {
    const ids: string[] = [];
    for (const v of ["2", "1", "2"]) ids.push((await svc.api.json("POST", "/api/v1/models/tri/load", { body: { version: v } })).body.id);
    expect(new Set(ids).size).toBe(3);
    const jobs = [];
    for (const id of ids) jobs.push(await svc.api.waitJob(id));
    expect(jobs.map((j) => [j.version, j.state])).toEqual([["2", "completed"], ["1", "completed"], ["2", "completed"]]);
    for (let i = 1; i < jobs.length; i++) expect(jobs[i]!.startedAt! >= jobs[i - 1]!.finishedAt!).toBe(true);
    expect((await model("tri")).servingVersion).toBe("2");
  });
});

describe("settings and warmup", () => {
  test("PATCH changes only the named settings and answers with the whole model; bad settings are 400", async () => {
    const res = await svc.api.json("PATCH", "/api/v1/models/plain", { body: { warmup: { runs: 2 } } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: "plain", warmup: { runs: 2 }, providers: null, versions: expect.any(Array) });
    const both = await svc.api.json("PATCH", "/api/v1/models/plain", { body: { providers: ["cpu"] } });
    expect(both.body).toMatchObject({ warmup: { runs: 2 }, providers: ["cpu"] });
    expect((await svc.api.json("PATCH", "/api/v1/models/plain", { body: { providers: null } })).body.providers).toBeNull();
    // The last: 2^30 elements, over MODELD_MAX_TENSOR_ELEMENTS, as an inference input would be.
    const tooBig = { warmup: { runs: 1, shapes: { x: [1 << 20, 1024] } } };
    for (const b of [{ bogus: 1 }, { warmup: { runs: -1 } }, { warmup: { runs: 1, extra: true } }, { providers: ["tpu"] }, { warmup: { runs: 1, shapes: { x: [0] } } }, tooBig]) {
      const bad = await svc.api.json("PATCH", "/api/v1/models/plain", { body: b });
      expect({ b, status: bad.status, code: bad.body.error.code }).toEqual({ b, status: 400, code: "VALIDATION_ERROR" });
    }
    expect((await svc.api.json("PATCH", "/api/v1/models/ghost", { body: {} })).status).toBe(404);
    expect((await svc.api.json("PATCH", "/api/v1/models/plain", { body: {}, token: await token({ role: "infer" }) })).status).toBe(403);
    expect((await model("plain")).warmup).toEqual({ runs: 2 });
  });

  test("a version serves only after its warmup passed; a warmup failure fails the load", async () => {
    await svc.api.json("PATCH", "/api/v1/models/warm", { body: { warmup: { runs: 1 } } });
    const failed = await load("warm");
    // The default warmup batch of 1 cannot be reshaped to rows of 3: ONNX Runtime refuses the run.
    expect(failed).toMatchObject({ state: "failed", error: { code: "WARMUP_FAILED" } });
    expect(phases(failed)).toContain("warming");
    expect(await model("warm")).toMatchObject({ state: "failed", lastError: { code: "WARMUP_FAILED" } });

    await svc.api.json("PATCH", "/api/v1/models/warm", { body: { warmup: { runs: 3, shapes: { x: [3, 4] } } } });
    const ok = await load("warm");
    expect(ok.state).toBe("completed");
    expect(phases(ok)).toEqual(["queued", "verifying", "creating_session", "warming", "switching"]);
  });

  test("changed session settings make a load of the serving version a swap to a fresh session; its failure keeps the old one", async () => {
    const x = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    const run = () => svc.api.json("POST", "/v2/models/warm/infer", { body: { inputs: [{ name: "x", datatype: "FP32", shape: [3, 4], data: x }] } });
    expect((await run()).status).toBe(200);
    expect((await load("warm")).outcome?.summary).toBe("already-loaded");

    await svc.api.json("PATCH", "/api/v1/models/warm", { body: { warmup: { runs: 1 } } });
    const failed = await load("warm");
    expect(failed).toMatchObject({ state: "failed", error: { code: "WARMUP_FAILED" } });
    expect(await model("warm")).toMatchObject({ state: "loaded", servingVersion: "1" });
    expect((await run()).status).toBe(200);

    await svc.api.json("PATCH", "/api/v1/models/warm", { body: { warmup: { runs: 2, shapes: { x: [6, 4] } } } });
    const fresh = await load("warm");
    expect(fresh).toMatchObject({ state: "completed", outcome: { version: "1", replaced: { version: "1", release: "released" } } });
    expect(phases(fresh)).toEqual(["queued", "verifying", "creating_session", "warming", "switching", "draining", "releasing"]);
    expect((await run()).body.model_version).toBe("1");
  });
});

describe("a warmup tensor past MODELD_MAX_TENSOR_ELEMENTS", () => {
  const small = useService({ MODELD_MAX_TENSOR_ELEMENTS: "3" }, (t) => void writeModel(t.modelDir, "plain.onnx", V1));

  test("fails the load at once, where the PATCH could not tell (the model's own fixed dimensions)", async () => {
    expect((await small.api.json("PATCH", "/api/v1/models/plain", { body: { warmup: { runs: 1 } } })).status).toBe(200);
    const job = await small.api.waitJob((await small.api.json("POST", "/api/v1/models/plain/load")).body.id);
    expect(job).toMatchObject({ state: "failed", error: { code: "WARMUP_FAILED", message: "warmup failed: input x's warmup tensor [1,4] has more than the allowed 3 elements (MODELD_MAX_TENSOR_ELEMENTS)" } });
  });
});

describe("session settings", () => {
  test("ONNX Runtime session options are settings: validated, reported, and applied by a swap to a fresh session", async () => {
    for (const b of [{ session: { intraOpThreads: -1 } }, { session: { graphOptimizationLevel: "max" } }, { session: { executionMode: "parallel", extra: 1 } }]) {
      expect((await svc.api.json("PATCH", "/api/v1/models/tri", { body: b })).status).toBe(400);
    }
    const threads = () => readdirSync("/proc/self/task").length;
    const settle = async () => {
      for (let i = 0; svc.svc.deps.runtime.threadsOf("tri") > 1 && i < 500; i++) await Bun.sleep(10);
      await Bun.sleep(200);
    };
    await svc.api.json("PATCH", "/api/v1/models/tri", { body: { session: { intraOpThreads: 1 } } });
    expect((await load("tri")).state).toBe("completed");
    await settle();
    const one = threads();
    const res = await svc.api.json("PATCH", "/api/v1/models/tri", { body: { session: { intraOpThreads: 6, graphOptimizationLevel: "basic" } } });
    expect(res.body.session).toEqual({ intraOpThreads: 6, graphOptimizationLevel: "basic" });
    const swapped = await load("tri");
    expect(swapped.outcome).toMatchObject({ replaced: { version: swapped.version } });
    await settle();
    // An intra-op pool of 6 runs 5 threads beside the caller's; a pool of 1 runs none.
    expect(threads() - one).toBeGreaterThanOrEqual(4);
    expect((await load("tri")).outcome?.summary).toBe("already-loaded");
    expect((await svc.api.json("PATCH", "/api/v1/models/tri", { body: { session: null } })).body.session).toEqual({});
  });
});

describe("restart", () => {
  test("the version that was serving is the one restored", async () => {
    const t = testEnv({ MODELD_RESTORE: "true" });
    writeModel(t.modelDir, "tri/1/model.onnx", V1);
    writeModel(t.modelDir, "tri/2/model.onnx", V2);
    let s = await startTestService(t);
    try {
      let api = await client(s);
      await api.waitJob((await api.json("POST", "/api/v1/models/tri/load", { body: { version: "1" } })).body.id);
      await api.waitJob((await api.json("POST", "/api/v1/models/tri/load", { body: { version: "2" } })).body.id);
      await s.close();
      s = await startTestService(t);
      api = await client(s);
      const restore = (await api.json("GET", "/api/v1/jobs?modelId=tri&limit=1")).body.jobs[0];
      expect(restore).toMatchObject({ kind: "load", version: "2", requestedBy: "restore" });
      expect((await api.waitJob(restore.id)).state).toBe("completed");
      expect((await api.json("GET", "/api/v1/models/tri")).body).toMatchObject({ state: "loaded", servingVersion: "2" });
      const out = (await api.json("POST", "/v2/models/tri/infer", { body: body() })).body;
      expect(out).toMatchObject({ model_version: "2", outputs: [{ data: expected("2", [1, 2, 3, 4]) }] });
    } finally {
      await s.close();
      cleanup(t);
    }
  });
});

test("a rescan says which files it skipped and why, where it used to say only that it added nothing", async () => {
  await onModelDir(() => {}, async (api, t) => {
    writeModel(t.modelDir, "My Model.onnx", V1);
    writeModel(t.root, "outside.onnx", V1);
    symlinkSync(join(t.root, "outside.onnx"), join(t.modelDir, "escape.onnx"));
    writeModel(t.modelDir, "fine.onnx", V1);
    const res = await api.json("POST", "/api/v1/models/rescan");
    expect(res.body.added).toEqual([{ id: "fine", version: "1" }]);
    expect(res.body.skipped).toEqual([
      { path: "My Model.onnx", reason: expect.stringContaining('"My Model" is not a valid model id') },
      { path: "escape.onnx", reason: expect.stringContaining("escape") },
    ]);
    expect((await api.json("GET", "/api/v1/models/escape")).status).toBe(404);
  });
});

test("Triton's layout for a model of several files, a folder model.onnx holding model.onnx and its weights, is a version", async () => {
  // Triton's documented form for models whose weights are external data files (past 2 GB); it was silently ignored.
  const parts = bigExternalModel(8);
  await onModelDir((t) => {
    writeModel(t.modelDir, "big/1/model.onnx/model.onnx", parts["model.onnx"]);
    writeModel(t.modelDir, "big/1/model.onnx/weights.bin", parts["weights.bin"]);
    writeModel(t.modelDir, "plain/2/model.onnx", V1);
    writeModel(t.modelDir, "plain/1/model.py", "# a Python backend's model: not modeld's");
  }, async (api, t) => {
    const big = (await api.json("GET", "/api/v1/models/big")).body;
    expect(big).toMatchObject({ path: "big/1/model.onnx/model.onnx", sizeBytes: parts["model.onnx"].byteLength + parts["weights.bin"].byteLength });
    expect((await api.waitJob((await api.json("POST", "/api/v1/models/big/load")).body.id)).state).toBe("completed");
    const res = await api.json("POST", "/v2/models/big/infer", { body: { inputs: [{ name: "i", datatype: "INT64", shape: [1], data: [250] }] } });
    expect(res.body.outputs[0].data).toEqual([251]);
    expect((await api.json("GET", "/api/v1/models/plain")).body.versions.map((v: any) => v.version)).toEqual(["2"]);
    // A version folder without a model file is said, not passed over in silence.
    expect((await api.json("POST", "/api/v1/models/rescan")).body.skipped).toEqual([{ path: "plain/1", reason: expect.stringContaining("no model.onnx in this version folder") }]);
  });
});

test("Triton's repository load reads the model's folder again, as Triton's does: a version or a model copied in since serves", async () => {
  // tritonclient's load_model after copying m/2/ into the repository reported success and left version 1 serving.
  await onModelDir((t) => {
    writeModel(t.modelDir, "m/1/model.onnx", V1);
  }, async (api, t) => {
    expect((await api.json("POST", "/v2/repository/models/m/load")).status).toBe(200);
    expect((await api.json("POST", "/v2/models/m/infer", { body: X })).body.model_version).toBe("1");
    writeModel(t.modelDir, "m/2/model.onnx", V2);
    expect((await api.json("POST", "/v2/repository/models/m/load")).status).toBe(200);
    const answer = (await api.json("POST", "/v2/models/m/infer", { body: X })).body;
    expect(answer).toMatchObject({ model_version: "2", outputs: [{ data: [2, 5, 8, 11] }] });
    writeModel(t.modelDir, "late/1/model.onnx", V1);
    expect((await api.json("POST", "/v2/repository/models/late/load")).status).toBe(200);
    expect((await api.json("GET", "/v2/models/late/ready")).status).toBe(200);
    // Only that model's folder is read: another new one waits for its own load or a rescan.
    writeModel(t.modelDir, "other/1/model.onnx", V1);
    expect((await api.json("POST", "/v2/repository/models/m/load")).status).toBe(200);
    expect((await api.json("GET", "/api/v1/models/other")).status).toBe(404);
    writeModel(t.modelDir, "Bad/1/model.onnx", V1);
    const bad = await api.json("POST", "/v2/repository/models/Bad/load");
    expect(bad.status).toBe(404);
    expect(bad.body.error).toContain("is not a valid model id");
  });
});

test("Triton's repository load of a serving version whose file was overwritten in place reloads it with no gap; a file that cannot load leaves the old one serving", async () => {
  // It answered 200 and went on serving what the file held before; the next load after an unload failed CHECKSUM_MISMATCH.
  await onModelDir((t) => {
    writeModel(t.modelDir, "m/1/model.onnx", V1);
  }, async (api, t) => {
    const infer = async () => (await api.json("POST", "/v2/models/m/infer", { body: X })).body;
    const digest = async () => (await api.json("GET", "/api/v1/models/m")).body.versions[0].sha256;
    expect((await api.json("POST", "/v2/repository/models/m/load")).status).toBe(200);
    expect(await infer()).toMatchObject({ model_version: "1", outputs: [{ data: [3, 5, 7, 9] }] });
    const before = await digest();

    writeModel(t.modelDir, "m/1/model.onnx", V2);
    // modeld's own load keeps its rule: a changed file is not taken silently, and the version already serves.
    const again = await api.waitJob((await api.json("POST", "/api/v1/models/m/load")).body.id);
    expect(again.outcome).toMatchObject({ summary: "already-loaded" });
    // A rescan does not change what serves, and says why it left the file.
    expect((await api.json("POST", "/api/v1/models/rescan")).body).toEqual({
      added: [],
      updated: [],
      skipped: [{ path: "m/1/model.onnx", reason: expect.stringContaining("changed since it was registered, and version 1 serves") }],
    });
    expect(await infer()).toMatchObject({ outputs: [{ data: [3, 5, 7, 9] }] });

    // Requests run throughout the reload: none fails.
    let running = true;
    const statuses: number[] = [];
    const traffic = (async () => {
      while (running) statuses.push((await api.json("POST", "/v2/models/m/infer", { body: X })).status);
    })();
    const reload = await api.json("POST", "/v2/repository/models/m/load");
    running = false;
    await traffic;
    expect(reload.status).toBe(200);
    expect(statuses.length).toBeGreaterThan(0);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(await infer()).toMatchObject({ model_version: "1", outputs: [{ data: [2, 5, 8, 11] }] });
    const after = await digest();
    expect(after).not.toBe(before);
    // The registry describes what serves: an unload and a load of it pass their checksum.
    expect((await api.json("POST", "/v2/repository/models/m/unload")).status).toBe(200);
    expect((await api.waitJob((await api.json("POST", "/api/v1/models/m/load")).body.id)).state).toBe("completed");
    expect(await infer()).toMatchObject({ outputs: [{ data: [2, 5, 8, 11] }] });

    writeModel(t.modelDir, "m/1/model.onnx", new TextEncoder().encode("not a model"));
    const broken = await api.json("POST", "/v2/repository/models/m/load");
    expect(broken.status).toBe(400);
    expect(broken.body.error).toContain("failed to load m");
    expect(await infer()).toMatchObject({ outputs: [{ data: [2, 5, 8, 11] }] });
    expect(await digest()).toBe(after);
    expect((await api.json("GET", "/api/v1/models/m")).body).toMatchObject({ state: "loaded", servingVersion: "1" });
  });
});

test("Triton's repository load of a changed serving file does not warn that it skipped the file it reloads; a rescan still does", async () => {
  // The load's scan logged "skipping a model file ... Triton's repository load reloads it" just before reloading it.
  const t = testEnv();
  writeModel(t.modelDir, "m/1/model.onnx", V1);
  const warnings: { msg: string; path?: string }[] = [];
  const service = await startTestService(t, createLogger("warn", {}, (line) => warnings.push(JSON.parse(line))));
  try {
    const api = await client(service);
    expect((await api.json("POST", "/v2/repository/models/m/load")).status).toBe(200);
    writeModel(t.modelDir, "m/1/model.onnx", V2);
    expect((await api.json("POST", "/v2/repository/models/m/load")).status).toBe(200);
    expect((await api.json("POST", "/v2/models/m/infer", { body: X })).body).toMatchObject({ outputs: [{ data: [2, 5, 8, 11] }] });
    expect(warnings.filter((w) => w.msg === "skipping a model file")).toEqual([]);

    writeModel(t.modelDir, "m/1/model.onnx", V1);
    expect((await api.json("POST", "/api/v1/models/rescan")).body.skipped).toEqual([{ path: "m/1/model.onnx", reason: expect.stringContaining("version 1 serves") }]);
    expect(warnings.filter((w) => w.msg === "skipping a model file")).toEqual([expect.objectContaining({ path: "m/1/model.onnx" })]);
  } finally {
    await service.close();
    cleanup(t);
  }
});

test("Triton's repository load after a version folder is removed rolls back to the newest version the folder still holds", async () => {
  // Removing a bad m/2/ and calling load_model is how a Triton user rolls back; modeld kept
  // targeting the registered version 2 and answered 400 (its file was gone).
  await onModelDir((t) => {
    writeModel(t.modelDir, "m/1/model.onnx", V1);
    writeModel(t.modelDir, "m/2/model.onnx", V2);
  }, async (api, t) => {
    expect((await api.json("POST", "/v2/repository/models/m/load")).status).toBe(200);
    expect((await api.json("POST", "/v2/models/m/infer", { body: X })).body.model_version).toBe("2");
    rmSync(join(t.modelDir, "m", "2"), { recursive: true });
    const back = await api.json("POST", "/v2/repository/models/m/load");
    expect(back.status).toBe(200);
    expect((await api.json("POST", "/v2/models/m/infer", { body: X })).body).toMatchObject({ model_version: "1", outputs: [{ data: [3, 5, 7, 9] }] });
    // Still registered, as modeld keeps what it registered: its own load of it names the missing file.
    const model = (await api.json("GET", "/api/v1/models/m")).body;
    expect(model.versions.map((v: { version: string }) => v.version)).toEqual(["1", "2"]);
    // With no version left in the folder, the load names what is missing and what serves stays.
    rmSync(join(t.modelDir, "m", "1"), { recursive: true });
    const none = await api.json("POST", "/v2/repository/models/m/load");
    expect(none.status).toBe(400);
    expect(none.body.error).toContain("m/2/model.onnx");
    expect((await api.json("POST", "/v2/models/m/infer", { body: X })).body.model_version).toBe("1");
  });
});

test("a rescan of a model dir that cannot be read answers 503 naming it, not an empty report; a missing one holds no models", async () => {
  await onModelDir((t) => {
    writeModel(t.modelDir, "kept.onnx", V1);
  }, async (api, t) => {
    rmSync(t.modelDir, { recursive: true });
    writeFileSync(t.modelDir, "not a folder");
    const unreadable = await api.json("POST", "/api/v1/models/rescan");
    expect({ status: unreadable.status, code: unreadable.body.error.code }).toEqual({ status: 503, code: "MODEL_DIR_UNREADABLE" });
    expect(unreadable.body.error.message).toContain(t.modelDir);
    rmSync(t.modelDir);
    expect((await api.json("POST", "/api/v1/models/rescan")).body).toEqual({ added: [], updated: [], skipped: [] });
    // What was registered stays registered.
    expect((await api.json("GET", "/api/v1/models/kept")).status).toBe(200);
  });
});
