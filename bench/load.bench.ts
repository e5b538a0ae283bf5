// Issue 2: load job wall time (POST -> completed) against raw
// InferenceSession.create of the same file, and /health latency while a big
// model loads (the HTTP thread must not be blocked).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { affineModel, bigModel } from "../test/fixtures/onnx-builder";
import { adminToken, api, fmtStats, header, loadAndWait, rawCreateMs, removeDir, startModeld, stats, tempDir } from "./lib";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);

export async function benchLoad(): Promise<void> {
  const dir = tempDir();
  mkdirSync(join(dir, "models"), { recursive: true });
  writeFileSync(join(dir, "models", "small.onnx"), affineModel());
  writeFileSync(join(dir, "models", "big.onnx"), bigModel(400));
  const server = await startModeld(dir);
  const token = await adminToken();
  try {
    header("Load job wall time vs raw InferenceSession.create");
    for (const [id, verify] of [["small", "true"], ["big", "true"]] as const) {
      const path = join(dir, "models", `${id}.onnx`);
      const raw: number[] = [];
      const modeld: number[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        raw.push(await rawCreateMs(path));

        const t = performance.now();
        const job = await loadAndWait(server.url, token, id);
        modeld.push(performance.now() - t);
        if (job.state !== "completed") throw new Error(JSON.stringify(job));
        await api(server.url, token, "GET", `/api/v1/jobs/${(await api(server.url, token, "POST", `/api/v1/models/${id}/unload`)).id}?wait=30`);
      }
      const r = stats(raw);
      const m = stats(modeld);
      console.log(`${id} (${id === "big" ? "400 MB" : "156 B"}, sha256 check ${verify}):`);
      console.log(`  raw create:   ${fmtStats(r)}`);
      console.log(`  modeld job:   ${fmtStats(m)}`);
      console.log(`  ratio (median modeld / raw): ${(m.median / r.median).toFixed(2)}x, overhead ${(m.median - r.median).toFixed(1)} ms`);
    }

    header("/health latency while the 400 MB model loads");
    const idle: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      await (await fetch(`${server.url}/health`)).arrayBuffer();
      idle.push(performance.now() - t);
    }
    const during: number[] = [];
    const job = await api(server.url, token, "POST", "/api/v1/models/big/load");
    for (;;) {
      const t = performance.now();
      await (await fetch(`${server.url}/health`)).arrayBuffer();
      during.push(performance.now() - t);
      const state = (await api(server.url, token, "GET", `/api/v1/jobs/${job.id}`)).state;
      if (state !== "pending" && state !== "running") break;
    }
    const a = stats(idle);
    const b = stats(during);
    console.log(`idle:          ${fmtStats(a)}; p99 ${a.p99.toFixed(2)} ms`);
    console.log(`during load:   ${fmtStats(b)}; p99 ${b.p99.toFixed(2)} ms (target < 5 ms)`);
    console.log(`ratio (p99 during / p99 idle): ${(b.p99 / a.p99).toFixed(2)}x (target ≤ 3x); worst during load ${b.max.toFixed(2)} ms`);
  } finally {
    await server.stop();
    removeDir(dir);
  }
}

if (import.meta.main) await benchLoad();
