// Real processes: kill -9 in the middle of a load, SIGTERM in the middle of a
// load, then restart on the same data dir and check what was left behind.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { openDatabase } from "../../src/db/driver";
import { startBinary, type RunningBinary } from "../fixtures/binary";
import { affineModel, bigModel } from "../fixtures/onnx-builder";
import { cleanup, SECRET, testEnv, token, until, writeModel, type TestEnv } from "../helpers";

const repo = join(import.meta.dir, "../..");
let t: TestEnv;
let admin: string;

beforeAll(async () => {
  t = testEnv({ MODELD_RESTORE: "true", MODELD_SHUTDOWN_TIMEOUT_MS: "3000" });
  writeModel(t.modelDir, "small.onnx", affineModel());
  writeModel(t.modelDir, "big.onnx", bigModel(400));
  admin = await token();
});
afterAll(() => cleanup(t));

const start = () => startBinary([process.execPath, join(repo, "src/main.ts"), "serve"], { ...t.env, MODELD_JWT_SECRET: SECRET }, repo);

async function call(s: RunningBinary, method: string, path: string): Promise<any> {
  const res = await fetch(`${s.url}${path}`, { method, headers: { authorization: `Bearer ${admin}` } });
  return res.json();
}

describe("crash and shutdown", () => {
  test("kill -9 while loading: the job is INTERRUPTED, nothing claims a session, the loaded model comes back", async () => {
    let s = await start();
    const small = await call(s, "POST", "/api/v1/models/small/load");
    expect((await call(s, "GET", `/api/v1/jobs/${small.id}?wait=20`)).state).toBe("completed");
    const big = await call(s, "POST", "/api/v1/models/big/load?activate=false");
    const running = await until(() => call(s, "GET", `/api/v1/jobs/${big.id}`), (j) => j.state !== "pending");
    expect(running.state).toBe("running");
    expect(await s.stop("SIGKILL")).not.toBe(0);

    s = await start();
    try {
      const bigJob = await call(s, "GET", `/api/v1/jobs/${big.id}`);
      expect(bigJob).toMatchObject({ state: "failed", error: { code: "INTERRUPTED" } });
      expect((await call(s, "GET", "/api/v1/models/big")).state).toBe("unloaded");
      const restore = (await call(s, "GET", "/api/v1/jobs?limit=5")).jobs.find((j: any) => j.requestedBy === "restore");
      expect(restore).toMatchObject({ modelId: "small", kind: "load" });
      expect((await call(s, "GET", `/api/v1/jobs/${restore.id}?wait=20`)).state).toBe("completed");
      expect(await call(s, "GET", "/api/v1/models/small")).toMatchObject({ state: "loaded", active: true });
    } finally {
      expect(await s.stop("SIGTERM")).toBe(0);
    }
  }, 120_000);

  test("SIGTERM while loading exits 0 within the bound and leaves consistent rows", async () => {
    const s = await start();
    const big = await call(s, "POST", "/api/v1/models/big/load?activate=false");
    await until(() => call(s, "GET", `/api/v1/jobs/${big.id}`), (j) => j.state !== "pending");
    const pending = await call(s, "POST", "/api/v1/models/big/unload");
    expect(pending.state).toBe("pending");
    const stopped = performance.now();
    const code = await s.stop("SIGTERM");
    const took = performance.now() - stopped;
    expect(code).toBe(0);
    expect(took).toBeLessThan(3000 * 2 + 2000); // the shutdown bound, twice (jobs, then sessions), plus slack
    expect(s.logs()).toContain('"msg":"stopped"');

    const db = await openDatabase(join(t.dataDir, "modeld.sqlite"));
    try {
      const rows = db.prepare<{ id: string; state: string; error_code: string | null }>("SELECT id, state, error_code FROM jobs").all();
      expect(rows.filter((r) => r.state === "running")).toEqual([]);
      // The queued unload stays pending for the next start.
      expect(rows.find((r) => r.id === pending.id)?.state).toBe("pending");
      const bigRow = rows.find((r) => r.id === big.id)!;
      expect(bigRow.state === "completed" || bigRow.error_code === "INTERRUPTED").toBe(true);
      expect(db.prepare<{ n: number }>("PRAGMA wal_checkpoint").get()).toBeDefined();
    } finally {
      db.close();
    }
  }, 120_000);

  test("SIGTERM ends open event streams and job long-polls at once, where the stop used to wait the bound out for them", async () => {
    const s = await start();
    const big = await call(s, "POST", "/api/v1/models/big/load?activate=false");
    await until(() => call(s, "GET", `/api/v1/jobs/${big.id}`), (j) => j.state !== "pending");
    const pending = await call(s, "POST", "/api/v1/models/big/unload");
    const auth = { authorization: `Bearer ${admin}` };
    const stream = await fetch(`${s.url}/api/v1/events`, { headers: auth });
    const streamEnded = (async () => {
      const reader = stream.body!.getReader();
      while (!(await reader.read()).done);
      return performance.now();
    })();
    const polled = fetch(`${s.url}/api/v1/jobs/${pending.id}?wait=60`, { headers: auth }).then(async (r) => ({ at: performance.now(), status: r.status, job: (await r.json()) as { state: string } }));
    await Bun.sleep(200);
    const stopped = performance.now();
    const exited = s.stop("SIGTERM");
    // The long-poll re-reads its job every MODELD_POLL_MS (1 s); the stream checks every 100 ms.
    const poll = await polled;
    expect({ status: poll.status, state: poll.job.state }).toEqual({ status: 200, state: "pending" });
    expect(poll.at - stopped).toBeLessThan(1500);
    expect((await streamEnded) - stopped).toBeLessThan(1000);
    expect(await exited).toBe(0);
  }, 60_000);

  test("SIGHUP, as a closed terminal sends it, stops gracefully like SIGTERM: exit 0, sessions released", async () => {
    const s = await start();
    const small = await call(s, "POST", "/api/v1/models/small/load?activate=false");
    expect((await until(() => call(s, "GET", `/api/v1/jobs/${small.id}`), (j) => j.state === "completed")).state).toBe("completed");
    expect(await s.stop("SIGHUP")).toBe(0);
    expect(s.logs()).toContain('"msg":"shutting down","service":"modeld","signal":"SIGHUP"');
    expect(s.logs()).toContain('"msg":"stopped"');
  }, 60_000);

  test("unloading gives the memory back: RSS returns near the baseline", async () => {
    const s = await start();
    const rss = () => Number(/VmRSS:\s+(\d+)/.exec(require("node:fs").readFileSync(`/proc/${s.proc.pid}/status`, "utf8"))![1]) / 1024;
    try {
      // Settle whatever the restore brought back, then measure with nothing loaded.
      for (const j of (await call(s, "GET", "/api/v1/jobs?state=pending")).jobs) await call(s, "GET", `/api/v1/jobs/${j.id}?wait=20`);
      for (const m of (await call(s, "GET", "/api/v1/models")).models.filter((m: any) => m.state === "loaded")) {
        await call(s, "GET", `/api/v1/jobs/${(await call(s, "POST", `/api/v1/models/${m.id}/unload`)).id}?wait=20`);
      }
      const baseline = rss();
      const load = await call(s, "POST", "/api/v1/models/big/load");
      expect((await call(s, "GET", `/api/v1/jobs/${load.id}?wait=30`)).state).toBe("completed");
      const loaded = rss();
      const unload = await call(s, "POST", "/api/v1/models/big/unload");
      expect((await call(s, "GET", `/api/v1/jobs/${unload.id}?wait=30`)).state).toBe("completed");
      await Bun.sleep(300);
      const after = rss();
      console.log(`RSS MB: baseline ${baseline.toFixed(0)}, loaded ${loaded.toFixed(0)}, after unload ${after.toFixed(0)}`);
      expect(loaded - baseline).toBeGreaterThan(300); // the 400 MB model really was in memory
      expect(after - baseline).toBeLessThan(120);
    } finally {
      expect(await s.stop("SIGTERM")).toBe(0);
    }
  }, 120_000);
});
