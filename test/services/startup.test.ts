// MODELD_LOAD_ON_START: models loaded at start, and readiness that waits for them.
import { expect, test } from "bun:test";
import { affineModel, bigModel } from "../fixtures/onnx-builder";
import { cleanup, client, startTestService, testEnv, writeModel } from "../helpers";

test("the listed models load at start; /v2/health/ready is 503 until they serve, liveness is 200 at once", async () => {
  const t = testEnv({ MODELD_LOAD_ON_START: "big,small" });
  writeModel(t.modelDir, "big.onnx", bigModel(60));
  writeModel(t.modelDir, "small.onnx", affineModel());
  writeModel(t.modelDir, "other.onnx", affineModel());
  const svc = await startTestService(t);
  try {
    const api = await client(svc);
    expect((await api.json("GET", "/v2/health/live")).status).toBe(200);
    expect((await api.json("GET", "/v2/health/ready")).body).toEqual({ ready: false });
    let ready = 503;
    for (let i = 0; i < 300 && ready !== 200; i++) {
      ready = (await api.json("GET", "/v2/health/ready")).status;
      if (ready !== 200) await Bun.sleep(50);
    }
    expect(ready).toBe(200);
    const states = Object.fromEntries((await api.json("GET", "/api/v1/models")).body.models.map((m: any) => [m.id, m.state]));
    expect(states).toEqual({ big: "loaded", small: "loaded", other: "unloaded" });
    expect((await api.json("GET", "/api/v1/jobs?limit=10")).body.jobs.filter((j: any) => j.requestedBy === "startup")).toHaveLength(2);
    // Readiness follows the listed models: unloading one makes the server unready again.
    await api.waitJob((await api.json("POST", "/api/v1/models/small/unload")).body.id);
    expect((await api.json("GET", "/v2/health/ready")).status).toBe(503);
  } finally {
    await svc.close();
    cleanup(t);
  }
});

test("* loads every registered model", async () => {
  const t = testEnv({ MODELD_LOAD_ON_START: "*" });
  for (const id of ["a", "b"]) writeModel(t.modelDir, `${id}.onnx`, affineModel());
  const svc = await startTestService(t);
  try {
    const api = await client(svc);
    for (let i = 0; i < 200 && (await api.json("GET", "/v2/health/ready")).status !== 200; i++) await Bun.sleep(50);
    expect((await api.json("GET", "/api/v1/models?state=loaded")).body.models.map((m: any) => m.id).sort()).toEqual(["a", "b"]);
  } finally {
    await svc.close();
    cleanup(t);
  }
});

test("an id the model dir does not hold stops the start with a message naming it", async () => {
  const t = testEnv({ MODELD_LOAD_ON_START: "ghost" });
  writeModel(t.modelDir, "a.onnx", affineModel());
  try {
    await expect(startTestService(t)).rejects.toThrow(/MODELD_LOAD_ON_START names ghost/);
  } finally {
    cleanup(t);
  }
});
