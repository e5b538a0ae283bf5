// The disk under modeld's database fails while the server runs: the data dir
// is an ext4 image on a loop device, shut down with the kernel's
// EXT4_IOC_SHUTDOWN, after which every read and write there fails with an I/O
// error, as on a dying disk. Loaded models serve on from memory, a request that
// must write answers 503 STORAGE_FAILED saying which database and why (a read
// may still be answered from SQLite's cache), a swap past its switch completes,
// and a stop still drains and releases every session. Mounting needs root and a
// loop device (as here and in CI); where that is refused, the test skips and says why.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { dlopen, FFIType } from "bun:ffi";
import { spawnSync } from "node:child_process";
import { closeSync, mkdirSync, openSync, rmSync } from "node:fs";
import { join } from "node:path";
import { affineModel, matmulChainModel } from "../fixtures/onnx-builder";
import { rawRunMs } from "../fixtures/raw-ort";
import { cleanup, client, startTestService, tempDir, testEnv, until, writeModel, type Client, type TestEnv } from "../helpers";
import type { Service } from "../../src/server";

/** Formats a 32 MiB ext4 image and mounts it at `dir` through a loop device; the reason when that is refused. */
function mountExt4(image: string, dir: string): string | null {
  const steps = [
    ["truncate", "-s", "32M", image],
    ["mkfs.ext4", "-q", "-F", image],
    ["mount", "-o", "loop", image, dir],
  ];
  for (const [cmd, ...args] of steps) {
    const r = spawnSync(cmd!, args, { encoding: "utf8" });
    if (r.status !== 0) return `${cmd}: ${(r.stderr || String(r.error)).trim()}`;
  }
  return null;
}

let shutDown = false;
/** EXT4_IOC_SHUTDOWN with EXT4_GOING_FLAGS_NOLOGFLUSH: from now on, every I/O on the filesystem fails. */
function shutDownFilesystem(dir: string): void {
  if (shutDown) return;
  shutDown = true;
  const EXT4_IOC_SHUTDOWN = 0x8004587dn; // _IOR('X', 125, __u32)
  const libc = dlopen("libc.so.6", { ioctl: { args: [FFIType.i32, FFIType.u64, FFIType.ptr], returns: FFIType.i32 } });
  const fd = openSync(dir, "r");
  try {
    expect(libc.symbols.ioctl(fd, EXT4_IOC_SHUTDOWN, new Uint32Array([2]))).toBe(0);
  } finally {
    closeSync(fd);
    libc.close();
  }
}

let t: TestEnv;
let svc: Service | undefined;
let api: Client;
let refused: string | null = null;
const image = join(tempDir(), "data.ext4");

beforeAll(async () => {
  t = testEnv();
  mkdirSync(t.dataDir, { recursive: true });
  refused = mountExt4(image, t.dataDir);
  if (refused) return console.warn(`storage-failed test skipped: cannot mount an ext4 image here (${refused})`);
  writeModel(t.modelDir, "affine.onnx", affineModel());
  // A few ms a run: requests in flight keep the old version draining for a while.
  for (const v of [1, 2]) writeModel(t.modelDir, `swapped/${v}/model.onnx`, matmulChainModel(512, 120));
  svc = await startTestService(t);
  api = await client(svc);
  // Both load while the disk works; the first test to run fails the disk under them.
  for (const [id, version] of [["affine", "1"], ["swapped", "1"]]) {
    expect((await api.waitJob((await api.json("POST", `/api/v1/models/${id}/load`, { body: { version } })).body.id)).state).toBe("completed");
  }
});

afterAll(async () => {
  await svc?.close();
  if (!refused) expect(spawnSync("umount", [t.dataDir], { encoding: "utf8" }).stderr).toBe("");
  rmSync(image, { force: true });
  cleanup(t);
});

const x = { inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }] };

/**
 * Rows per request for which `requests` runs of the model take at least `ms` on this
 * host, measured with raw ONNX Runtime: a fixed [1, n] drained before the swap reached
 * its draining step on a fast hour of this machine.
 */
async function rowsToKeepBusy(path: string, n: number, requests: number, ms: number): Promise<number> {
  let rows = 1;
  while (rows < 64 && requests * (await rawRunMs(path, { x: { type: "float32", data: new Float32Array(rows * n), dims: [rows, n] } }, 5)) < ms) rows *= 2;
  return rows;
}

describe("the database's disk fails", () => {
  test("a swap whose old version is draining when the disk fails completes: the new version serves, the old one's thread ends", async () => {
    if (refused) return;
    const N = 512;
    const rows = await rowsToKeepBusy(join(t.modelDir, "swapped/1/model.onnx"), N, 120, 4000);
    const slow = { inputs: [{ name: "x", datatype: "FP32", shape: [rows, N], data: new Array(rows * N).fill(0.5) }] };
    const inFlight = Promise.all(Array.from({ length: 120 }, () => api.json("POST", "/v2/models/swapped/infer", { body: slow })));
    await Bun.sleep(50);
    const swap = (await api.json("POST", "/api/v1/models/swapped/load", { body: { version: "2" } })).body.id;
    const job = await until(() => api.json("GET", `/api/v1/jobs/${swap}`), (r) => r.body.phase === "draining", 20_000, 1);
    expect(job.body.phase).toBe("draining");
    const threads = svc!.deps.runtime.threads;
    shutDownFilesystem(t.dataDir);
    expect((await inFlight).every((r) => r.status === 200)).toBe(true);
    // The old version's thread ends once drained, though neither its release nor the job's end can be recorded.
    expect(await until(async () => svc!.deps.runtime.threads, (n) => n < threads, 10_000, 10)).toBeLessThan(threads);
    const answer = await api.json("POST", "/v2/models/swapped/infer", { body: slow });
    expect({ status: answer.status, version: answer.body.model_version }).toEqual({ status: 200, version: "2" });
  }, 60_000);

  test("loaded models serve on, requests that need the database answer 503 naming it, and a stop still releases every session", async () => {
    if (refused) return;
    shutDownFilesystem(t.dataDir);

    expect((await api.json("POST", "/v2/models/affine/infer", { body: x })).body.outputs[0].data).toEqual([3, 5, 7, 9]);
    const database = join(t.dataDir, "modeld.sqlite");
    for (const [method, path, body] of [
      ["PATCH", "/api/v1/models/affine", { pinned: true }],
      ["POST", "/api/v1/models/affine/unload", undefined],
    ] as const) {
      const res = await api.json(method, path, { body });
      expect({ path, status: res.status, code: res.body.error?.code }).toEqual({ path, status: 503, code: "STORAGE_FAILED" });
      expect(res.body.error.message).toContain(database);
    }
    const v2 = await api.json("POST", "/v2/repository/models/affine/unload");
    expect({ status: v2.status, error: v2.body.error }).toEqual({ status: 503, error: expect.stringContaining(database) });
    // The timers that read the database (idle expiry every 200 ms, the job loop's poll) meet it
    // failing too, and must not take the process, and the models it serves, down with them.
    await Bun.sleep(1000);
    expect((await api.json("POST", "/v2/models/affine/infer", { body: x })).status).toBe(200);

    // The stop cannot record anything; it still drains, releases the session and closes the database.
    const service = svc!;
    svc = undefined;
    await service.close();
    expect(service.deps.runtime.threads).toBe(0);
  });
});
