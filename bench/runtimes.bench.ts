// The same server on Bun, Node and Deno, side by side in one run: the tiny
// model at concurrency 1 and 64, and a 400 MB load job against raw
// InferenceSession.create in this (Bun) process. Each load job follows a raw
// create, as in the load section: a reference measured minutes before the
// runtimes' loads took in the host's drift (1.25x for Bun here, 1.01x in the
// load section of the same run).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startBinary } from "../test/fixtures/binary";
import { affineModel, bigModel } from "../test/fixtures/onnx-builder";
import { buildPortable, modeldCommand, RUNTIMES } from "../test/fixtures/runtimes";
import { adminToken, api, hammer, header, loadAndWait, rawCreateMs, removeDir, repo, SECRET, stats, tempDir, WARMUP_SECONDS } from "./lib";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

export async function benchRuntimes(): Promise<void> {
  buildPortable();
  const dir = tempDir();
  const models = join(dir, "models");
  mkdirSync(models, { recursive: true });
  writeFileSync(join(models, "tiny.onnx"), affineModel());
  writeFileSync(join(models, "big.onnx"), bigModel(400));
  const admin = await adminToken();
  const rows: string[] = [];
  for (const runtime of RUNTIMES) {
    const data = join(dir, `data-${runtime}`);
    const server = await startBinary([...modeldCommand(runtime), "serve"], { MODELD_DATA_DIR: data, MODELD_MODEL_DIR: models, MODELD_JWT_SECRET: SECRET, MODELD_RESTORE: "false", PATH: process.env.PATH! }, repo, 60_000);
    try {
      await loadAndWait(server.url, admin, "tiny");
      const body = JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }] });
      const headers = { authorization: `Bearer ${admin}`, "content-type": "application/json" };
      const infer = () => fetch(`${server.url}/v2/models/tiny/infer`, { method: "POST", headers, body });
      await hammer(4, WARMUP_SECONDS, infer);
      const c1 = stats((await hammer(1, SECONDS, infer)).latencies);
      const c64 = await hammer(64, SECONDS, infer);
      const loads: number[] = [];
      const raws: number[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        raws.push(await rawCreateMs(join(models, "big.onnx")));
        const t = performance.now();
        const job = await loadAndWait(server.url, admin, "big");
        loads.push(performance.now() - t);
        if (job.state !== "completed") throw new Error(`${runtime}: ${JSON.stringify(job.error)}`);
        await api(server.url, admin, "GET", `/api/v1/jobs/${(await api(server.url, admin, "POST", "/api/v1/models/big/unload")).id}?wait=30`);
      }
      const load = stats(loads).median;
      const raw = stats(raws).median;
      rows.push(
        `| ${runtime} | ${Math.round(c1.median * 1000)} µs | ${Math.round(c1.p99 * 1000)} µs | ${c64.rps.toFixed(0)} req/s (${c64.errors} errors) | ${load.toFixed(0)} ms against raw ${raw.toFixed(0)} ms, ${(load / raw).toFixed(2)}x |`,
      );
    } finally {
      await server.stop();
    }
  }
  header("The same server on each runtime");
  console.log(`Each load job follows a raw InferenceSession.create of the same file in this (Bun) process; medians of ${ROUNDS} of each.\n`);
  console.log("| runtime | tiny c=1 p50 | tiny c=1 p99 | tiny c=64 | 400 MB load job against raw create (medians) |\n| --- | --- | --- | --- | --- |");
  for (const r of rows) console.log(r);
  removeDir(dir);
}
