// With MODELD_SPIN_US, a session worker that answered a lone request stays
// awake, blocking its own event loop, and after a few lone requests in a row the
// HTTP thread waits awake for each answer. Here the worker's window is the
// largest allowed, so the stop paths land while it spins: none of them may wait
// on the spin, lose a request, or leave the thread behind; and a worker that dies
// while the HTTP thread waits for its answer is reported as any crash is.
// Whether spinning pays is a speed question, measured in bench/floor.bench.ts.
import { describe, expect, test } from "bun:test";
import { affineModel } from "../fixtures/onnx-builder";
import { until, useService, writeModel } from "../helpers";

/** Each session's worker dies on receiving its run number CRASH_AFTER + 1. */
const CRASH_AFTER = 60;
const svc = useService({ MODELD_SPIN_US: "10000", MODELD_FAULT_WORKER_CRASH_AFTER_RUNS: String(CRASH_AFTER) }, (t) => void writeModel(t.modelDir, "affine.onnx", affineModel()));

const load = async () => (await svc.api.waitJob((await svc.api.json("POST", "/api/v1/models/affine/load")).body.id)).state;
const unload = async (force: boolean) => svc.api.waitJob((await svc.api.json("POST", `/api/v1/models/affine/unload${force ? "?force=true" : ""}`)).body.id);
const infer = (x: number) => svc.api.json("POST", "/v2/models/affine/infer", { body: { inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [x, x + 1, x + 2, x + 3] }] } });
/** The model's threads once they are gone, or as many as are left after 10 s. */
const threadsLeft = () => until(async () => svc.svc.deps.runtime.threadsOf("affine"), (n) => n === 0, 10_000);

/** Requests one at a time: after each answer the worker spins, and the next one finds it awake. */
async function oneAtATime(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await infer(i);
    expect(res.status).toBe(200);
    expect(res.body.outputs[0].data).toEqual([2 * i + 1, 2 * i + 3, 2 * i + 5, 2 * i + 7]);
  }
}

describe("a session worker that stays awake between requests", () => {
  test("requests one at a time each get their own answer, and an unload right after one releases the session and ends its thread", async () => {
    expect(await load()).toBe("completed");
    await oneAtATime(50);
    const job = await unload(false);
    expect(job.state).toBe("completed");
    expect(job.outcome?.summary).toBe("released");
    expect(await threadsLeft()).toBe(0);
  });

  test("a force unload while it spins answers in-flight requests 503, never 5xx otherwise, and a load serves again", async () => {
    expect(await load()).toBe("completed");
    await oneAtATime(5);
    const inflight = Array.from({ length: 16 }, (_, i) => infer(i));
    const job = await unload(true);
    expect(job.state).toBe("completed");
    const statuses = (await Promise.all(inflight)).map((r) => r.status);
    expect(statuses.every((s) => s === 200 || s === 503)).toBe(true);
    expect(await threadsLeft()).toBe(0);
    expect(await load()).toBe("completed");
    await oneAtATime(5);
  });

  test("a worker that dies while the HTTP thread waits for its answer: 503, WORKER_CRASHED, and a load serves again", async () => {
    expect(await unload(false)).toMatchObject({ state: "completed" });
    expect(await load()).toBe("completed");
    await oneAtATime(CRASH_AFTER);
    const died = await infer(CRASH_AFTER);
    expect(died.status).toBe(503);
    expect(died.body).toEqual({ error: "model affine stopped serving: its worker ended" });
    expect((await svc.api.json("GET", "/api/v1/models/affine")).body).toMatchObject({ state: "failed", lastError: { code: "WORKER_CRASHED" } });
    expect(await threadsLeft()).toBe(0);
    expect(await load()).toBe("completed");
    await oneAtATime(5);
  });
});
