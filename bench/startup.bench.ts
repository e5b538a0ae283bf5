// Issue 4: binary size, and cold start of the compiled binary to
// /v2/health/ready, with an empty registry and with 3 models to restore; and
// the first load job after a start against the next one.
import { copyFileSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildBinary } from "../test/fixtures/build";
import { affineModel } from "../test/fixtures/onnx-builder";
import { adminToken, api, fmtStats, header, loadAndWait, removeDir, SECRET, stats, tempDir } from "./lib";

const STARTS = Number(process.env.BENCH_STARTS ?? 15);

/** Starts the binary and waits until /v2/health/ready answers 200; `readyMs` is how long that took. */
async function startUntilReady(bin: string, env: Record<string, string>, cwd: string) {
  const t = performance.now();
  const proc = Bun.spawn([bin], { env: { PATH: "/usr/bin:/bin", HOME: cwd, ...env }, cwd, stdout: "ignore", stderr: "ignore" });
  const url = `http://127.0.0.1:${env.MODELD_PORT}`;
  for (;;) {
    try {
      if ((await fetch(`${url}/v2/health/ready`)).ok) break;
    } catch {}
    await Bun.sleep(1);
  }
  return { proc, url, readyMs: performance.now() - t };
}

async function coldStart(bin: string, env: Record<string, string>, cwd: string): Promise<number> {
  const { proc, readyMs } = await startUntilReady(bin, env, cwd);
  proc.kill("SIGTERM");
  await proc.exited;
  return readyMs;
}

const FIRST_LOAD_STARTS = 7;
const REPOSITORY_MODELS = 500;
const REPOSITORY_STARTS = 5;
const FIRST_LOAD_AFTER_MS = 500;

/** Server-side durations (job created to finished) of the first two load jobs after a start. */
async function firstLoads(bin: string, env: Record<string, string>, cwd: string): Promise<[number, number]> {
  const { proc, url } = await startUntilReady(bin, env, cwd);
  try {
    await Bun.sleep(FIRST_LOAD_AFTER_MS);
    const token = await adminToken();
    const took = async (id: string) => {
      const job = await api(url, token, "POST", `/api/v1/models/${id}/load`);
      const done = await api(url, token, "GET", `/api/v1/jobs/${job.id}?wait=60`);
      if (done.state !== "completed") throw new Error(`load ${id}: ${JSON.stringify(done)}`);
      return Date.parse(done.finishedAt) - Date.parse(done.createdAt);
    };
    return [await took("a"), await took("b")];
  } finally {
    proc.kill("SIGTERM");
    await proc.exited;
  }
}

export async function benchStartup(): Promise<void> {
  const dir = tempDir();
  const bin = join(dir, "modeld");
  buildBinary(bin);
  header("Binary");
  console.log(`dist/modeld: ${(statSync(bin).size / 1024 / 1024).toFixed(1)} MiB (Bun runtime, the app, libonnxruntime.so.1, the Scalar script, the demo model)`);

  const env = (name: string, port: number) => ({
    MODELD_DATA_DIR: join(dir, name, "data"),
    MODELD_MODEL_DIR: join(dir, name, "models"),
    MODELD_JWT_SECRET: SECRET,
    MODELD_PORT: String(port),
    MODELD_LOG_LEVEL: "warn",
    XDG_CACHE_HOME: join(dir, "cache"),
  });
  try {
    header(`Cold start to /v2/health/ready (median of ${STARTS} starts)`);
    const empty = env("empty", 18901);
    mkdirSync(empty.MODELD_MODEL_DIR, { recursive: true });
    await coldStart(bin, empty, dir); // first start extracts the native library once
    const e: number[] = [];
    for (let i = 0; i < STARTS; i++) e.push(await coldStart(bin, empty, dir));

    const three = env("three", 18902);
    mkdirSync(three.MODELD_MODEL_DIR, { recursive: true });
    for (const id of ["a", "b", "c"]) writeFileSync(join(three.MODELD_MODEL_DIR, `${id}.onnx`), affineModel());
    // Load the three once so every later start restores them.
    const proc = Bun.spawn([bin], { env: { PATH: "/usr/bin:/bin", HOME: dir, ...three }, cwd: dir, stdout: "ignore", stderr: "ignore" });
    await Bun.sleep(500);
    const token = await adminToken();
    for (const id of ["a", "b", "c"]) await loadAndWait(`http://127.0.0.1:${three.MODELD_PORT}`, token, id);
    proc.kill("SIGTERM");
    await proc.exited;
    const r: number[] = [];
    for (let i = 0; i < STARTS; i++) r.push(await coldStart(bin, three, dir));

    const es = stats(e);
    const rs = stats(r);
    console.log(`empty registry:      ${fmtStats(es, "ms", 1)} (target ≤ 100 ms)`);
    console.log(`3 models to restore: ${fmtStats(rs, "ms", 1)} (ready does not wait for the restore jobs)`);
    console.log(`ratio restore / empty: ${(rs.median / es.median).toFixed(2)}x`);

    header(`A repository of ${REPOSITORY_MODELS} small models in Triton's layout: start to ready (median of ${REPOSITORY_STARTS} starts)`);
    const repoEnv = env("repository", 18904);
    for (let i = 0; i < REPOSITORY_MODELS; i++) {
      const versionDir = join(repoEnv.MODELD_MODEL_DIR, `m${i}`, "1");
      mkdirSync(versionDir, { recursive: true });
      writeFileSync(join(versionDir, "model.onnx"), affineModel(i, 1));
    }
    const firstStarts: number[] = [];
    const laterStarts: number[] = [];
    for (let i = 0; i < REPOSITORY_STARTS; i++) {
      removeDir(repoEnv.MODELD_DATA_DIR); // every file is new: registered and hashed before listening
      firstStarts.push(await coldStart(bin, repoEnv, dir));
      laterStarts.push(await coldStart(bin, repoEnv, dir)); // every file known: stat only
    }
    const fs = stats(firstStarts);
    console.log(`first start (all new):  ${fmtStats(fs, "ms", 1)}; ${(fs.median / REPOSITORY_MODELS).toFixed(2)} ms per model; ${(fs.median / es.median).toFixed(1)}x the empty registry's start`);
    console.log(`later start (all known): ${fmtStats(stats(laterStarts), "ms", 1)}; ${(stats(laterStarts).median / es.median).toFixed(1)}x the empty registry's start`);

    header(`The first load job after a start vs the next one (small model, ${FIRST_LOAD_STARTS} starts)`);
    const fresh = { ...env("first", 18903), MODELD_RESTORE: "false" };
    mkdirSync(fresh.MODELD_MODEL_DIR, { recursive: true });
    for (const id of ["a", "b"]) writeFileSync(join(fresh.MODELD_MODEL_DIR, `${id}.onnx`), affineModel());
    const first: number[] = [];
    const next: number[] = [];
    for (let i = 0; i < FIRST_LOAD_STARTS; i++) {
      const [a, b] = await firstLoads(bin, fresh, dir);
      first.push(a);
      next.push(b);
    }
    console.log(`first load job:  ${fmtStats(stats(first), "ms", 1)} (created to finished, ${FIRST_LOAD_AFTER_MS} ms after ready)`);
    console.log(`next load job:   ${fmtStats(stats(next), "ms", 1)}`);
  } finally {
    removeDir(dir);
  }
}

if (import.meta.main) await benchStartup();
