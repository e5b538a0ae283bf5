// A session worker that dies on its own, mid-traffic. The thread really dies
// (an uncaught error in it, injected by MODELD_FAULT_WORKER_CRASH_AFTER_RUNS):
// nothing else can make a serving worker die without ending the process.
import { describe, expect, test } from "bun:test";
import { affineModel, matmulChainModel } from "../fixtures/onnx-builder";
import { until, useService, writeModel } from "../helpers";

const CRASH_AFTER = 3;
const svc = useService({ MODELD_FAULT_WORKER_CRASH_AFTER_RUNS: String(CRASH_AFTER) }, (t) => {
  writeModel(t.modelDir, "slow.onnx", matmulChainModel(512, 120));
  writeModel(t.modelDir, "bystander.onnx", affineModel());
});

const N = 512;
const slowInput = { inputs: [{ name: "x", datatype: "FP32", shape: [1, N], data: new Array(N).fill(0.5) }] };
const affineInput = { inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }] };
const load = async (id: string, settings?: object) => {
  if (settings) expect((await svc.api.json("PATCH", `/api/v1/models/${id}`, { body: settings })).status).toBe(200);
  return svc.api.waitJob((await svc.api.json("POST", `/api/v1/models/${id}/load?activate=false`)).body.id);
};
const infer = (id: string, body: object) => svc.api.json("POST", `/v2/models/${id}/infer`, { body });
const threadsOf = (id: string) => svc.svc.deps.runtime.threadsOf(id);

describe("a session worker that dies", () => {
  for (const [name, settings] of [
    ["batching off", { batching: null }],
    ["batching on", { batching: { maxBatchSize: 16 } }],
  ] as const) {
    test(`${name}: requests in flight answer 503, the model reports WORKER_CRASHED, its thread is gone, other models serve, and a load serves again`, async () => {
      expect((await load("bystander")).state).toBe("completed");
      expect((await load("slow", settings)).state).toBe("completed");
      for (let i = 0; i < CRASH_AFTER; i++) expect((await infer("slow", slowInput)).status).toBe(200);

      // Requests in flight when the thread died get 503; any arriving after it, "not loaded".
      const answers = await Promise.all(Array.from({ length: 24 }, () => infer("slow", slowInput)));
      const died = answers.filter((a) => a.status === 503);
      expect(answers.filter((a) => a.status !== 503).every((a) => a.status === 400 && a.body.error === "model slow is not loaded")).toBe(true);
      expect(died.length).toBeGreaterThan(0);
      expect(died[0]!.body).toEqual({ error: "model slow stopped serving: its worker ended" });
      expect(died[0]!.res.headers.get("retry-after")).toBe("1");

      const model = (await svc.api.json("GET", "/api/v1/models/slow")).body;
      expect(model).toMatchObject({ state: "failed", lastError: { code: "WORKER_CRASHED" }, servingVersion: null });
      expect(model.versions[0]).toMatchObject({ state: "failed", lastError: { code: "WORKER_CRASHED" } });
      expect(await until(async () => threadsOf("slow"), (n) => n === 0, 10_000)).toBe(0);
      expect(svc.svc.deps.lifecycle.violations()).toEqual([]);
      // Requests after the crash are told the model is not loaded, not left waiting.
      expect((await infer("slow", slowInput)).status).toBe(400);
      expect((await infer("bystander", affineInput)).body.outputs[0].data).toEqual([3, 5, 7, 9]);
      expect((await svc.api.call("GET", "/v2/health/live")).status).toBe(200);

      expect((await load("slow")).state).toBe("completed");
      expect((await svc.api.json("GET", "/api/v1/models/slow")).body.state).toBe("loaded");
      expect((await infer("slow", slowInput)).status).toBe(200);
      expect((await svc.api.waitJob((await svc.api.json("POST", "/api/v1/models/slow/unload")).body.id)).state).toBe("completed");
    }, 60_000);
  }
});
