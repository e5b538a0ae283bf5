// The jobs service: enqueueJob's side effects happen only after its transaction commits, and a
// long-poll keeps its deadline on a clock that never steps.
import { expect, setSystemTime, test } from "bun:test";
import { affineModel, bigModel } from "../fixtures/onnx-builder";
import { cleanup, client, startTestService, testEnv, writeModel } from "../helpers";

test("a force unload refused with TOO_MANY_JOBS changes nothing: the running load it would have cancelled still completes", async () => {
  // Restore jobs are not admitted against MODELD_MAX_PENDING_JOBS, so a restart
  // with a lower bound leaves more unfinished jobs than the bound. They are
  // queued in model-id order, so "big" loads first while the other two wait.
  const t = testEnv({ MODELD_RESTORE: "true", MODELD_JOB_CONCURRENCY: "1", MODELD_VERIFY_CHECKSUM: "false" });
  writeModel(t.modelDir, "big.onnx", bigModel(200));
  for (const id of ["x", "y"]) writeModel(t.modelDir, `${id}.onnx`, affineModel());
  let svc = await startTestService(t);
  try {
    let api = await client(svc);
    for (const id of ["big", "x", "y"]) await api.waitJob((await api.json("POST", `/api/v1/models/${id}/load?activate=false`)).body.id);
    await svc.close();

    svc = await startTestService({ ...t, env: { ...t.env, MODELD_MAX_PENDING_JOBS: "2" } });
    api = await client(svc);
    const restores = (await api.json("GET", "/api/v1/jobs?state=pending&limit=10")).body.jobs.concat((await api.json("GET", "/api/v1/jobs?state=running&limit=10")).body.jobs);
    const big = restores.find((j: { modelId: string }) => j.modelId === "big");
    expect(restores.length).toBe(3);
    while ((await api.json("GET", `/api/v1/jobs/${big.id}`)).body.state === "pending") await Bun.sleep(2);

    // Cancelling the running load would leave 2 unfinished jobs, still at the bound: refused.
    const refused = await api.json("POST", "/api/v1/models/big/unload?force=true");
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe("TOO_MANY_JOBS");

    const done = await api.waitJob(big.id);
    expect({ state: done.state, error: done.error }).toEqual({ state: "completed", error: null });
    expect((await api.json("GET", "/api/v1/models/big")).body).toMatchObject({ state: "loaded", servingVersion: "1" });
  } finally {
    await svc.close();
    cleanup(t);
  }
}, 60_000);

test("a long-poll waits as long as asked on a clock that never steps, whatever the wall clock does", async () => {
  const t = testEnv();
  writeModel(t.modelDir, "m.onnx", affineModel());
  const svc = await startTestService(t);
  try {
    const api = await client(svc);
    await svc.loop.stop(5_000); // the job stays pending
    const job = (await api.json("POST", "/api/v1/models/m/load")).body;
    // Held an hour back, as a stepped wall clock is: a deadline on it would never come.
    setSystemTime(new Date(Date.now() - 3_600_000));
    const started = performance.now();
    const waited = await Promise.race([api.json("GET", `/api/v1/jobs/${job.id}?wait=1`), Bun.sleep(5_000).then(() => null)]);
    expect(waited?.body.state).toBe("pending");
    expect(performance.now() - started).toBeGreaterThanOrEqual(990);
  } finally {
    setSystemTime();
    await svc.close();
    cleanup(t);
  }
}, 30_000);
