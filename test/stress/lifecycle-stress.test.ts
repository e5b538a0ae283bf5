// Triton's lifecycle bar: many clients racing loads of either version (so
// swaps), unload, force unload, cancel and inference on a few models.
// Afterwards nothing is lost or doubled, and the lifecycle owner's invariant holds.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { JOB_ERROR_CODES } from "../../src/jobs/states";
import type { Service } from "../../src/server";
import { affineModel } from "../fixtures/onnx-builder";
import { cleanup, client, startTestService, testEnv, token, writeModel, type Client, type TestEnv } from "../helpers";

const CLIENTS = 32;
const OPS = 200;
const MODELS = ["m0", "m1", "m2"];

let t: TestEnv;
let svc: Service;
let api: Client;

beforeAll(async () => {
  t = testEnv({ MODELD_JOB_CONCURRENCY: "3", MODELD_UNLOAD_TIMEOUT_MS: "2000" });
  for (const m of MODELS) {
    writeModel(t.modelDir, `${m}/1/model.onnx`, affineModel(2, 1));
    writeModel(t.modelDir, `${m}/2/model.onnx`, affineModel(3, -1));
  }
  svc = await startTestService(t);
  api = await client(svc);
});
afterAll(async () => {
  await svc.close();
  cleanup(t);
});

/** A small deterministic PRNG so a failure can be replayed. */
function rng(seed: number) {
  return () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

test(`${CLIENTS} clients × ${OPS} random lifecycle operations on ${MODELS.length} models`, async () => {
  const infer = await token({ role: "infer" });
  const statuses = new Map<number, number>();
  const fiveHundreds: string[] = [];
  const note = (what: string, status: number) => {
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
    if (status >= 500 && status !== 503) fiveHundreds.push(`${what} -> ${status}`);
  };
  const body = { inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }] };

  const runClient = async (c: number) => {
    const rand = rng(c + 1);
    const myJobs: string[] = [];
    for (let i = 0; i < OPS; i++) {
      const m = MODELS[Math.floor(rand() * MODELS.length)]!;
      const r = rand();
      let what: string;
      let res: Response;
      if (r < 0.45) {
        what = `infer ${m}`;
        res = await api.call("POST", `/v2/models/${m}/infer`, { token: infer, body });
        // Under racing unloads inference may be refused, but only cleanly.
        if (res.status !== 200) expect([400, 503]).toContain(res.status);
      } else if (r < 0.65) {
        const version = ["1", "2", undefined][Math.floor(rand() * 3)];
        what = `load ${m}@${version ?? "newest"}`;
        res = await api.call("POST", `/api/v1/models/${m}/load`, version ? { body: { version } } : {});
      } else if (r < 0.8) {
        what = `unload ${m}`;
        res = await api.call("POST", `/api/v1/models/${m}/unload`);
      } else if (r < 0.9) {
        what = `force-unload ${m}`;
        res = await api.call("POST", `/api/v1/models/${m}/unload?force=true`);
      } else {
        const id = myJobs[Math.floor(rand() * myJobs.length)];
        if (!id) continue;
        what = `cancel ${id}`;
        res = await api.call("POST", `/api/v1/jobs/${id}/cancel`);
        expect([200, 409]).toContain(res.status);
      }
      note(what, res.status);
      const text = await res.text();
      if (res.status === 202) myJobs.push(JSON.parse(text).id);
    }
  };

  const started = performance.now();
  await Promise.all(Array.from({ length: CLIENTS }, (_, c) => runClient(c)));
  // Let the queue drain.
  const deadline = Date.now() + 60_000;
  while (svc.deps.jobs.countUnfinished() > 0 && Date.now() < deadline) await Bun.sleep(50);
  if (svc.deps.jobs.countUnfinished() > 0) {
    const stuck = svc.deps.jobs.list({ state: "running", limit: 10 });
    throw new Error(`queue did not drain: running ${JSON.stringify(stuck)}; threads ${JSON.stringify(svc.deps.runtime.describe())}`);
  }
  await svc.loop.idle();
  console.log(`stress: ${CLIENTS * OPS} ops in ${((performance.now() - started) / 1000).toFixed(1)} s; statuses ${JSON.stringify(Object.fromEntries(statuses))}`);

  // No request got a 5xx other than the documented 503s.
  expect(fiveHundreds).toEqual([]);
  // The server is live.
  expect((await api.call("GET", "/v2/health/ready", { token: null })).status).toBe(200);
  // Every job ended, with a documented code when it did not complete.
  const jobs = (await api.json("GET", "/api/v1/jobs?limit=200")).body.jobs;
  expect(svc.deps.jobs.countUnfinished()).toBe(0);
  const all = svc.deps.db
    .prepare<{ state: string; error_code: string | null; model_id: string; kind: string; version: number | null; seq: number }>("SELECT state, error_code, model_id, kind, version, seq FROM jobs ORDER BY seq")
    .all();
  expect(all.length).toBeGreaterThan(50);
  for (const j of all) {
    expect(["completed", "failed", "cancelled"]).toContain(j.state);
    if (j.state !== "completed") expect(Object.keys(JOB_ERROR_CODES)).toContain(j.error_code!);
  }
  expect(jobs.length).toBeGreaterThan(0);
  // No model has two sessions: count the worker threads.
  for (let waited = 0; svc.deps.runtime.threads > svc.deps.runtime.size && waited < 10_000; waited += 20) await Bun.sleep(20);
  for (const m of MODELS) expect({ m, threads: svc.deps.runtime.threadsOf(m) <= 1 }).toEqual({ m, threads: true });
  // The lifecycle owner's invariant: SQLite and the runtime agree on every model and version.
  expect(svc.deps.lifecycle.violations()).toEqual([]);
  expect(all.filter((j) => j.error_code === "INTERNAL")).toEqual([]);
  // Each model's state matches the last intent that took effect: its newest completed job.
  for (const m of MODELS) {
    const last = all.filter((j) => j.model_id === m && j.state === "completed").at(-1);
    const model = (await api.json("GET", `/api/v1/models/${m}`)).body;
    const expected = last?.kind === "load" ? { state: "loaded", servingVersion: String(last.version) } : { state: "unloaded", servingVersion: null };
    expect({ m, state: model.state, servingVersion: model.servingVersion }).toEqual({ m, ...expected });
  }
}, 240_000);
