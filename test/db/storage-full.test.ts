// The disk under modeld's database fills up: the data dir is a small tmpfs,
// filled to the last byte while the server runs. A write then fails as the
// operator's problem (507 STORAGE_FULL), serving goes on, and a job caught
// half-way ends, once the disk has room again, with every row saying what the
// runtime really has. Mounting a tmpfs needs root (as here and in CI); where
// that is refused, the tests skip and say why.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { closeSync, mkdirSync, openSync, readdirSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { affineModel, bigModel, matmulChainModel } from "../fixtures/onnx-builder";
import { cleanup, client, startTestService, tempDir, testEnv, until, writeModel, type Client, type TestEnv } from "../helpers";
import { extractOnce } from "../../src/runtime/native";
import type { Service } from "../../src/server";

/** Mounts a tmpfs of `size` at `dir`; the reason when that is refused. */
function mountTmpfs(dir: string, size: string): string | null {
  const r = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir], { encoding: "utf8" });
  return r.status === 0 ? null : (r.stderr || String(r.error)).trim();
}
/** Unmounts, failing the test if something still holds a file there. */
const unmount = (dir: string) => expect(spawnSync("umount", [dir], { encoding: "utf8" }).stderr).toBe("");

/** Why a tmpfs cannot be mounted here, or null when it can. */
function mountRefused(): string | null {
  const dir = tempDir();
  const refused = mountTmpfs(dir, "1m");
  if (!refused) unmount(dir);
  rmSync(dir, { recursive: true, force: true });
  return refused;
}
const refused = mountRefused();
if (refused) console.warn(`storage-full tests skipped: cannot mount a tmpfs here (${refused})`);

/** A service whose data dir is a 16 MiB tmpfs of its own, which the test fills and frees. */
function useSmallDisk(env: Record<string, string>, prepare: (t: TestEnv) => void) {
  let state: { t: TestEnv; svc: Service; api: Client } | undefined;
  const filler = () => join(state!.t.dataDir, "filler");
  beforeAll(async () => {
    const t = testEnv(env, tempDir());
    mkdirSync(t.dataDir, { recursive: true });
    const refused = mountTmpfs(t.dataDir, "16m");
    if (refused) throw new Error(`mount: ${refused}`);
    prepare(t);
    const svc = await startTestService(t);
    state = { t, svc, api: await client(svc) };
  });
  afterAll(async () => {
    if (!state) return;
    rmSync(filler(), { force: true });
    await state.svc.close();
    unmount(state.t.dataDir);
    cleanup(state.t);
  });
  return {
    get svc() {
      return state!.svc;
    },
    /** The service's client, once beforeAll has started it. */
    api: {
      json: (...a) => state!.api.json(...a),
      call: (...a) => state!.api.call(...a),
      waitJob: (...a) => state!.api.waitJob(...a),
    } satisfies Client,
    /** Fills the disk until the kernel refuses another byte. */
    fill(): void {
      const fd = openSync(filler(), "w");
      const chunk = Buffer.alloc(64 * 1024, 1);
      try {
        for (;;) writeSync(fd, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
        // The last bytes, smaller than a chunk.
        try {
          for (;;) writeSync(fd, chunk, 0, 512);
        } catch {}
      } finally {
        closeSync(fd);
      }
    },
    free: () => rmSync(filler(), { force: true }),
    get t() {
      return state!.t;
    },
    /** Closes the service and starts it again on the same dirs, running `between` in the gap. */
    async restart(between: () => void | Promise<void>): Promise<void> {
      await state!.svc.close();
      await between();
      const svc = await startTestService(state!.t);
      state = { ...state!, svc, api: await client(svc) };
    },
  };
}

const N = 512;
const slowInput = { inputs: [{ name: "x", datatype: "FP32", shape: [1, N], data: new Array(N).fill(0.5) }] };
const plainInput = { inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }] };

/** The calls the tests make, against one small-disk service. */
function calls(disk: ReturnType<typeof useSmallDisk>) {
  const { api } = disk;
  /**
   * Fills the disk as soon as a running job that the jobs list `query` selects is in
   * `phase`, so its later writes meet a full disk. Returns the job's id.
   */
  const fillWhen = async (query: string, phase: string): Promise<string> => {
    const running = async () => (await api.json("GET", `/api/v1/jobs?state=running&${query}`)).body.jobs.find((j: { phase: string }) => j.phase === phase) as { id: string } | undefined;
    const job = await until(running, (j) => j !== undefined, 20_000, 1);
    if (!job) throw new Error(`no running job of ${query} reached ${phase}`);
    disk.fill();
    return job.id;
  };
  const infer = (id: string, body: object) => api.json("POST", `/v2/models/${id}/infer`, { body });
  return {
    api,
    infer,
    fillWhen,
    load: async (id: string, query = "") => api.waitJob((await api.json("POST", `/api/v1/models/${id}/load${query}`)).body.id),
    model: async (id: string) => (await api.json("GET", `/api/v1/models/${id}`)).body,
    /**
     * Queues slow requests on the model, starts the job `path` names, and fills the disk
     * while the job drains them: they all succeed, and the job waits for room. Frees the disk.
     */
    async fillWhileDraining(id: string, path: string): Promise<string> {
      const inFlight = Promise.all(Array.from({ length: 120 }, () => infer(id, slowInput)));
      await Bun.sleep(50);
      const jobId = (await api.json("POST", path)).body.id;
      try {
        expect(await fillWhen(`modelId=${id}`, "draining")).toBe(jobId);
        expect((await inFlight).every((r) => r.status === 200)).toBe(true);
        await Bun.sleep(1000);
        expect((await api.json("GET", `/api/v1/jobs/${jobId}`)).body.state).toBe("running");
      } finally {
        disk.free();
      }
      return jobId;
    },
    async fillWhileWarming(id: string, query: string): Promise<string> {
      const job = (await api.json("POST", `/api/v1/models/${id}/load${query}`)).body;
      expect(await fillWhen(`modelId=${id}`, "warming")).toBe(job.id);
      return job.id;
    },
  };
}

describe.skipIf(refused !== null)("a full disk under the database", () => {
  const disk = useSmallDisk({}, (t) => {
    writeModel(t.modelDir, "plain.onnx", affineModel());
    // ~10 ms a run here, so a warmup of 150 runs holds a load in `warming` long enough to fill the disk.
    for (const name of ["slow", "swapped", "swapped-2", "drained", "drained-2", "late", "triton"]) writeModel(t.modelDir, `${name}.onnx`, matmulChainModel(N, 120));
  });
  const { api, load, infer, model, fillWhen, fillWhileWarming, fillWhileDraining } = calls(disk);

  test("a write answers 507 STORAGE_FULL and is rolled back whole; reads and inference go on; once freed, writes work", async () => {
    expect((await load("plain")).state).toBe("completed");
    disk.fill();
    try {
      for (const [method, path, body] of [
        ["POST", "/api/v1/models/plain/unload", undefined],
        ["POST", "/api/v1/models/plain/load", undefined],
        ["PATCH", "/api/v1/models/plain", { warmup: { runs: 1 } }],
      ] as const) {
        const res = await api.json(method, path, { body });
        expect(res.status).toBe(507);
        expect(res.body.error).toMatchObject({ code: "STORAGE_FULL", message: expect.stringContaining("the disk is full") });
      }
      // The Open Inference Protocol's error shape, for the same cause.
      const repo = await api.json("POST", "/v2/repository/models/plain/unload");
      expect(repo.status).toBe(507);
      expect(repo.body).toEqual({ error: expect.stringContaining("the disk is full") });

      expect(await model("plain")).toMatchObject({ state: "loaded", warmup: { runs: 0 } });
      expect((await api.json("GET", "/api/v1/jobs")).body.jobs.every((j: { state: string }) => j.state === "completed")).toBe(true);
      expect((await infer("plain", plainInput)).body.outputs[0].data).toEqual([3, 5, 7, 9]);
      expect((await api.call("GET", "/v2/health/ready")).status).toBe(200);
    } finally {
      disk.free();
    }
    expect((await api.waitJob((await api.json("POST", "/api/v1/models/plain/unload")).body.id)).state).toBe("completed");
    expect(disk.svc.deps.lifecycle.violations()).toEqual([]);
  }, 60_000);

  test("a load caught half-way waits for room to record its end, then fails STORAGE_FULL, and nothing claims a session", async () => {
    expect((await api.json("PATCH", "/api/v1/models/slow", { body: { warmup: { runs: 150 } } })).status).toBe(200);
    const jobId = await fillWhileWarming("slow", "?activate=false");
    try {
      await Bun.sleep(2500);
      // Its end cannot be written yet, so it still reads as running, and the model as loading.
      expect((await api.json("GET", `/api/v1/jobs/${jobId}`)).body.state).toBe("running");
      expect((await model("slow")).state).toBe("loading");
    } finally {
      disk.free();
    }
    const job = await api.waitJob(jobId);
    expect(job).toMatchObject({ state: "failed", error: { code: "STORAGE_FULL" } });
    const m = await model("slow");
    expect(m).toMatchObject({ state: "failed", lastError: { code: "STORAGE_FULL" }, servingVersion: null });
    expect(m.versions[0]).toMatchObject({ state: "failed", lastError: { code: "STORAGE_FULL" } });
    expect(disk.svc.deps.runtime.get("slow")).toBeUndefined();
    expect(disk.svc.deps.lifecycle.violations()).toEqual([]);

    expect((await api.json("PATCH", "/api/v1/models/slow", { body: { warmup: { runs: 0 } } })).status).toBe(200);
    expect((await load("slow", "?activate=false")).state).toBe("completed");
    expect((await infer("slow", slowInput)).status).toBe(200);
  }, 60_000);

  test("a swap caught half-way: the old version serves throughout, and stays the model's serving version", async () => {
    expect((await load("swapped", "?activate=false")).state).toBe("completed");
    expect((await api.json("POST", "/api/v1/models/swapped/versions", { body: { path: "swapped-2.onnx" } })).status).toBe(201);
    expect((await api.json("PATCH", "/api/v1/models/swapped", { body: { warmup: { runs: 150 } } })).status).toBe(200);
    const jobId = await fillWhileWarming("swapped", "?activate=false");
    try {
      const during = await Promise.all(Array.from({ length: 8 }, () => infer("swapped", slowInput)));
      expect(during.map((r) => [r.status, r.body.model_version])).toEqual(Array.from({ length: 8 }, () => [200, "1"]));
      await Bun.sleep(1500);
    } finally {
      disk.free();
    }
    expect(await api.waitJob(jobId)).toMatchObject({ state: "failed", error: { code: "STORAGE_FULL" } });
    const m = await model("swapped");
    expect(m).toMatchObject({ state: "loaded", servingVersion: "1" });
    expect(m.versions.map((v: { version: string; state: string; lastError: { code: string } | null }) => [v.version, v.state, v.lastError?.code ?? null])).toEqual([
      ["1", "loaded", null],
      ["2", "failed", "STORAGE_FULL"],
    ]);
    expect((await infer("swapped", slowInput)).body.model_version).toBe("1");
    expect(disk.svc.deps.lifecycle.violations()).toEqual([]);
  }, 60_000);

  test("a swap whose old version is still draining when the disk fills completes: the new version serves, the old one ends unloaded", async () => {
    expect((await load("drained", "?activate=false")).state).toBe("completed");
    expect((await api.json("POST", "/api/v1/models/drained/versions", { body: { path: "drained-2.onnx" } })).status).toBe(201);
    // Requests queued on version 1 keep it draining after the switch.
    const jobId = await fillWhileDraining("drained", "/api/v1/models/drained/load?activate=false");
    expect(await api.waitJob(jobId)).toMatchObject({ state: "completed", outcome: { version: "2", replaced: { version: "1", release: "released" } } });
    const m = await model("drained");
    expect(m).toMatchObject({ state: "loaded", servingVersion: "2" });
    expect(m.versions.map((v: { version: string; state: string }) => [v.version, v.state])).toEqual([
      ["1", "unloaded"],
      ["2", "loaded"],
    ]);
    expect((await infer("drained", slowInput)).body.model_version).toBe("2");
    expect(disk.svc.deps.lifecycle.violations()).toEqual([]);
  }, 60_000);

  test("an unload still draining when the disk fills completes, and the model ends unloaded", async () => {
    const jobId = await fillWhileDraining("drained", "/api/v1/models/drained/unload");
    expect(await api.waitJob(jobId)).toMatchObject({ state: "completed", outcome: { summary: "released" } });
    expect(await model("drained")).toMatchObject({ state: "unloaded", servingVersion: null });
    expect(disk.svc.deps.runtime.get("drained")).toBeUndefined();
    expect(disk.svc.deps.lifecycle.violations()).toEqual([]);
  }, 60_000);

  test("Triton's repository load, caught half-way, answers 507 once its job has ended, not a 400 for a bad model", async () => {
    expect((await api.json("PATCH", "/api/v1/models/triton", { body: { warmup: { runs: 150 } } })).status).toBe(200);
    const answer = api.json("POST", "/v2/repository/models/triton/load");
    await fillWhen("modelId=triton", "warming");
    try {
      await Bun.sleep(1500);
    } finally {
      disk.free();
    }
    const res = await answer;
    expect(res.status).toBe(507);
    expect(res.body).toEqual({ error: expect.stringMatching(/^failed to load triton: the database .* could not be written: the disk is full/) });
    expect(await model("triton")).toMatchObject({ state: "failed", lastError: { code: "STORAGE_FULL" } });
  }, 60_000);

  test("a stop while a job waits for room completes without writing, and the next start records the job interrupted", async () => {
    expect((await api.json("PATCH", "/api/v1/models/late", { body: { warmup: { runs: 150 } } })).status).toBe(200);
    const jobId = await fillWhileWarming("late", "?activate=false");
    await Bun.sleep(2000);
    // close() would reject if a write it cannot make were fatal; it frees the disk only after.
    await disk.restart(() => disk.free());
    expect((await api.json("GET", `/api/v1/jobs/${jobId}`)).body).toMatchObject({ state: "failed", error: { code: "INTERRUPTED" } });
    expect(await model("late")).toMatchObject({ state: "unloaded", servingVersion: null });
    expect(disk.svc.deps.lifecycle.violations()).toEqual([]);
  }, 60_000);

  test("a start on a full disk stops with the reason and leaves no file open; with room, it starts", async () => {
    await disk.restart(async () => {
      disk.fill();
      try {
        await expect(startTestService(disk.t)).rejects.toThrow(`the database ${disk.t.dataDir}/modeld.sqlite could not be written: the disk is full`);
      } finally {
        disk.free();
      }
    });
    expect((await api.json("GET", "/api/v1/models/plain")).body.state).toBe("unloaded");
    // The umount after the last test fails if the failed start left the database open.
  }, 60_000);
});

describe.skipIf(refused !== null)("a worker crash while the disk is full", () => {
  const CRASH_AFTER = 3;
  const disk = useSmallDisk({ MODELD_FAULT_WORKER_CRASH_AFTER_RUNS: String(CRASH_AFTER) }, (t) => writeModel(t.modelDir, "crashy.onnx", affineModel()));
  const { api, load, infer, model } = calls(disk);
  /** Loads the model, lets its worker die while the disk is full, and frees the disk. */
  async function crashWhileFull(): Promise<void> {
    expect((await load("crashy", "?activate=false")).state).toBe("completed");
    for (let i = 0; i < CRASH_AFTER; i++) expect((await infer("crashy", plainInput)).status).toBe(200);
    disk.fill();
    try {
      expect([503, 400]).toContain((await infer("crashy", plainInput)).status);
      await Bun.sleep(300);
    } finally {
      disk.free();
    }
  }

  test("is recorded once the disk has room: the model ends failed WORKER_CRASHED", async () => {
    await crashWhileFull();
    expect(await until(() => model("crashy"), (m) => m.state === "failed", 10_000, 50)).toMatchObject({ state: "failed", lastError: { code: "WORKER_CRASHED" }, servingVersion: null });
    expect(disk.svc.deps.lifecycle.violations()).toEqual([]);
  }, 60_000);

  test("a load asked for before the crash is recorded still starts from what the runtime has, and serves", async () => {
    await crashWhileFull();
    const job = await api.waitJob((await api.json("POST", "/api/v1/models/crashy/load?activate=false")).body.id);
    expect(job).toMatchObject({ state: "completed" });
    expect(await model("crashy")).toMatchObject({ state: "loaded", servingVersion: "1" });
    expect((await infer("crashy", plainInput)).body.outputs[0].data).toEqual([3, 5, 7, 9]);
    expect(disk.svc.deps.lifecycle.violations()).toEqual([]);
  }, 60_000);
});

describe.skipIf(refused !== null)("an eviction while the disk fills", () => {
  const disk = useSmallDisk({ MODELD_MEMORY_BUDGET: "140MiB" }, (t) => {
    for (const [name, mb] of [["a", 50], ["b", 51], ["c", 60]] as const) writeModel(t.modelDir, `${name}.onnx`, bigModel(mb));
  });
  const { api, load, model, fillWhen } = calls(disk);

  test("is recorded once the disk has room: the eviction completes, its model ends unloaded, the load that needed the room fails STORAGE_FULL", async () => {
    expect((await load("a", "?activate=false")).state).toBe("completed");
    expect((await load("b", "?activate=false")).state).toBe("completed");
    const loadC = (await api.json("POST", "/api/v1/models/c/load?activate=false")).body.id;
    // The disk fills while the eviction's worker releases A's session, before its end is written.
    const eviction = await fillWhen("reason=evicted", "releasing");
    try {
      await Bun.sleep(1500);
      expect((await api.json("GET", `/api/v1/jobs/${eviction}`)).body.state).toBe("running");
    } finally {
      disk.free();
    }
    expect(await api.waitJob(eviction)).toMatchObject({ state: "completed", reason: { kind: "evicted", for: "c@1" } });
    expect(await api.waitJob(loadC)).toMatchObject({ state: "failed", error: { code: "STORAGE_FULL" } });
    // A, loaded first and idle since, is the least recently used.
    expect(await model("a")).toMatchObject({ state: "unloaded", servingVersion: null });
    expect(await model("b")).toMatchObject({ state: "loaded" });
    expect(await model("c")).toMatchObject({ state: "failed", lastError: { code: "STORAGE_FULL" } });
    const audit = (await api.json("GET", "/api/v1/audit")).body;
    expect(JSON.stringify(audit)).toContain("unload a: evicted for c@1");
    expect(disk.svc.deps.lifecycle.violations()).toEqual([]);
  }, 60_000);
});

describe.skipIf(refused !== null)("the compiled binary's ONNX Runtime on a full cache disk", () => {
  test("extracting it fails naming MODELD_CACHE_DIR, and leaves no partial file to keep the disk full", () => {
    const dir = tempDir();
    expect(mountTmpfs(dir, "1m")).toBeNull();
    try {
      const ortDir = join(dir, "onnxruntime");
      expect(() => extractOnce(ortDir, "libonnxruntime.so.1", () => new Uint8Array(4 * 1024 * 1024))).toThrow(
        `cannot write libonnxruntime.so.1 into ${ortDir} (MODELD_CACHE_DIR): ENOSPC`,
      );
      expect(readdirSync(ortDir)).toEqual([]);
    } finally {
      unmount(dir);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(refused !== null)("modeld backup onto a full disk", () => {
  test("names the copy's disk, not the database's, and leaves no partial copy", () => {
    const dir = tempDir();
    const target = join(dir, "target");
    mkdirSync(target);
    // Smaller than the freshly migrated database.
    expect(mountTmpfs(target, "32k")).toBeNull();
    try {
      const env = { PATH: process.env.PATH ?? "", HOME: dir, MODELD_DATA_DIR: join(dir, "data") };
      const cli = (...args: string[]) => Bun.spawnSync([process.execPath, join(import.meta.dir, "../../src/main.ts"), ...args], { env });
      expect(cli("migrate").exitCode).toBe(0);
      const copy = join(target, "copy.sqlite");
      const r = cli("backup", copy);
      expect({ code: r.exitCode, err: r.stderr.toString().trim() }).toEqual({
        code: 1,
        err: `modeld: cannot write the backup ${copy}: the disk is full there; ${join(dir, "data", "modeld.sqlite")} is unchanged`,
      });
      expect(readdirSync(target)).toEqual([]);
    } finally {
      unmount(target);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
