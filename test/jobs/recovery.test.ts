import { afterEach, describe, expect, test } from "bun:test";
import { openDatabase } from "../../src/db/driver";
import { createJobsRepo } from "../../src/db/jobs.repo";
import type { Service } from "../../src/server";
import { affineModel } from "../fixtures/onnx-builder";
import { cleanup, client, startTestService, testEnv, writeModel, type TestEnv } from "../helpers";

let t: TestEnv;
let svc: Service | undefined;
afterEach(async () => {
  await svc?.close();
  svc = undefined;
  cleanup(t);
});

/** Leaves the database as a process killed mid-job would: a running job, a model claiming a session. */
async function simulateCrashState(dbPath: string, modelId: string): Promise<string> {
  const db = await openDatabase(dbPath);
  const jobs = createJobsRepo(db);
  const job = jobs.insert({ kind: "load", modelId, requestedBy: "someone" });
  db.prepare("UPDATE jobs SET state = 'running', started_at = @at WHERE id = @id").run({ id: job.id, at: new Date().toISOString() });
  // Written raw: this is what a process killed mid-load leaves, not a transition modeld makes.
  db.prepare("UPDATE models SET state = 'loading' WHERE id = @id").run({ id: modelId });
  db.prepare("UPDATE model_versions SET state = 'loading' WHERE model_id = @id").run({ id: modelId });
  db.close();
  return job.id;
}

describe("restart", () => {
  test("the registry and jobs survive; a job left running is INTERRUPTED; no model claims a session", async () => {
    t = testEnv();
    writeModel(t.modelDir, "a.onnx", affineModel());
    writeModel(t.modelDir, "b.onnx", affineModel());
    svc = await startTestService(t);
    let api = await client(svc);
    const done = await api.waitJob((await api.json("POST", "/api/v1/models/a/load")).body.id);
    await svc.close();
    svc = undefined;

    const runningId = await simulateCrashState(`${t.dataDir}/modeld.sqlite`, "b");
    svc = await startTestService(t);
    api = await client(svc);
    expect((await api.json("GET", `/api/v1/jobs/${done.id}`)).body.state).toBe("completed");
    const interrupted = (await api.json("GET", `/api/v1/jobs/${runningId}`)).body;
    expect(interrupted).toMatchObject({ state: "failed", error: { code: "INTERRUPTED" } });
    expect(interrupted.finishedAt).toBeString();
    const models = (await api.json("GET", "/api/v1/models")).body.models;
    // Restore is off in this environment: nothing claims a session it does not have.
    expect(models.map((m: { id: string; state: string }) => [m.id, m.state])).toEqual([["a", "unloaded"], ["b", "unloaded"]]);
    expect(models.every((m: { active: boolean }) => !m.active)).toBe(true);
    expect(svc.deps.runtime.size).toBe(0);
  });

  test("with restore on, models that were loaded come back as visible 'restore' jobs, active one included", async () => {
    t = testEnv({ MODELD_RESTORE: "true" });
    writeModel(t.modelDir, "a.onnx", affineModel());
    writeModel(t.modelDir, "b.onnx", affineModel());
    svc = await startTestService(t);
    let api = await client(svc);
    await api.waitJob((await api.json("POST", "/api/v1/models/a/load?activate=false")).body.id);
    await api.waitJob((await api.json("POST", "/api/v1/models/b/load")).body.id);
    await svc.close();
    svc = undefined;

    svc = await startTestService(t);
    api = await client(svc);
    const restores = (await api.json("GET", "/api/v1/jobs?limit=10")).body.jobs.filter((j: { requestedBy: string }) => j.requestedBy === "restore");
    expect(restores.map((j: { modelId: string }) => j.modelId).sort()).toEqual(["a", "b"]);
    for (const j of restores) expect((await api.waitJob(j.id)).state).toBe("completed");
    const models = (await api.json("GET", "/api/v1/models")).body.models;
    expect(models.map((m: { id: string; state: string; active: boolean }) => [m.id, m.state, m.active])).toEqual([
      ["a", "loaded", false],
      ["b", "loaded", true],
    ]);
    expect(svc.deps.runtime.size).toBe(2);
  });

  test("pending jobs left by a stopped process run after restart", async () => {
    t = testEnv();
    writeModel(t.modelDir, "a.onnx", affineModel());
    svc = await startTestService(t);
    await svc.close();
    svc = undefined;
    const db = await openDatabase(`${t.dataDir}/modeld.sqlite`);
    const pending = createJobsRepo(db).insert({ kind: "load", modelId: "a", requestedBy: "before-restart" });
    db.close();
    svc = await startTestService(t);
    const api = await client(svc);
    expect((await api.waitJob(pending.id)).state).toBe("completed");
  });

  test("finished jobs past MODELD_JOB_RETENTION_HOURS are pruned; unfinished ones never are", async () => {
    t = testEnv();
    writeModel(t.modelDir, "a.onnx", affineModel());
    svc = await startTestService(t);
    let api = await client(svc);
    const done = await api.waitJob((await api.json("POST", "/api/v1/models/a/load")).body.id);
    await svc.close();
    svc = undefined;
    const db = await openDatabase(`${t.dataDir}/modeld.sqlite`);
    const pending = createJobsRepo(db).insert({ kind: "unload", modelId: "a", requestedBy: "later" });
    db.close();

    svc = await startTestService({ ...t, env: { ...t.env, MODELD_JOB_RETENTION_HOURS: "0" } });
    api = await client(svc);
    expect((await api.json("GET", `/api/v1/jobs/${done.id}`)).status).toBe(404);
    expect((await api.json("GET", `/api/v1/jobs/${pending.id}`)).status).toBe(200);
  });
});
