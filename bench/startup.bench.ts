// Issue 4: binary size, and cold start of the compiled binary to
// /v2/health/ready, with an empty registry and with 3 models to restore.
import { copyFileSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildBinary } from "../test/fixtures/build";
import { affineModel } from "../test/fixtures/onnx-builder";
import { adminToken, fmtStats, header, loadAndWait, removeDir, SECRET, stats, tempDir } from "./lib";

const STARTS = Number(process.env.BENCH_STARTS ?? 15);

async function coldStart(bin: string, env: Record<string, string>, cwd: string): Promise<number> {
  const t = performance.now();
  const proc = Bun.spawn([bin], { env: { PATH: "/usr/bin:/bin", HOME: cwd, ...env }, cwd, stdout: "ignore", stderr: "ignore" });
  const url = `http://127.0.0.1:${env.MODELD_PORT}/v2/health/ready`;
  for (;;) {
    try {
      if ((await fetch(url)).ok) break;
    } catch {}
    await Bun.sleep(1);
  }
  const ms = performance.now() - t;
  proc.kill("SIGTERM");
  await proc.exited;
  return ms;
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
  } finally {
    removeDir(dir);
  }
}

if (import.meta.main) await benchStartup();
