// Issue 9: memory that comes back, and what managing it costs.
// - RSS of the server after N load/unload cycles of a 400 MB model (N = 10,
//   100) against its RSS after one cycle.
// - A load job that must evict first against a plain load of the same file.
// - The first request to an unloaded model with on-demand loading, against a
//   load job followed by the same request.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bigModel } from "../test/fixtures/onnx-builder";
import { adminToken, api, fmtStats, header, removeDir, startModeld, stats, tempDir } from "./lib";

const CYCLES = (process.env.BENCH_CYCLES ?? "10,100").split(",").map(Number);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const MiB = 1024 * 1024;

function rssOf(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m![1]) * 1024;
}

async function job(url: string, token: string, method: string, path: string, body?: unknown) {
  const j = await api(url, token, method, path, body);
  const done = await api(url, token, "GET", `/api/v1/jobs/${j.id}?wait=60`);
  if (done.state !== "completed") throw new Error(`${path}: ${JSON.stringify(done)}`);
  return done;
}

export async function benchCycles(): Promise<void> {
  const dir = tempDir();
  mkdirSync(join(dir, "models"), { recursive: true });
  writeFileSync(join(dir, "models", "big.onnx"), bigModel(400));
  // glibc's arena count shapes how much freed memory stays resident; pass it through to compare.
  const arenas = process.env.MALLOC_ARENA_MAX;
  const server = await startModeld(dir, arenas ? { MALLOC_ARENA_MAX: arenas } : {});
  if (arenas) console.log(`(MALLOC_ARENA_MAX=${arenas})`);
  const token = await adminToken();
  try {
    header("RSS after N load/unload cycles of a 400 MB model");
    const cycle = async () => {
      await job(server.url, token, "POST", "/api/v1/models/big/load");
      return (await job(server.url, token, "POST", "/api/v1/models/big/unload")).outcome.reclaimedBytes as number;
    };
    const start = rssOf(server.proc.pid);
    const reclaimed = [await cycle()];
    const baseline = rssOf(server.proc.pid);
    console.log(`at start:             ${(start / MiB).toFixed(0)} MiB`);
    console.log(`after 1 cycle:        ${(baseline / MiB).toFixed(0)} MiB (the baseline)`);
    let done = 1;
    for (const n of CYCLES) {
      while (done < n) (reclaimed.push(await cycle()), done++);
      const rss = rssOf(server.proc.pid);
      console.log(`after ${String(n).padEnd(3)} cycles:      ${(rss / MiB).toFixed(0)} MiB = baseline ${rss >= baseline ? "+" : "-"}${((Math.abs(rss - baseline) / baseline) * 100).toFixed(1)}% (target ≤ +10%)`);
    }
    console.log(`reclaimedBytes per unload: ${fmtStats(stats(reclaimed.map((b) => b / MiB)), "MiB", 1)}`);
  } finally {
    await server.stop();
    removeDir(dir);
  }
}

async function benchAdmission(): Promise<void> {
  const dir = tempDir();
  mkdirSync(join(dir, "models"), { recursive: true });
  for (const id of ["a", "b"]) writeFileSync(join(dir, "models", `${id}.onnx`), bigModel(100));
  // Room for one 100 MB model, not two: loading one evicts the other.
  const server = await startModeld(dir, { MODELD_MEMORY_BUDGET: "180MiB", MODELD_LOAD_ON_DEMAND: "true" });
  const token = await adminToken();
  const infer = await adminToken("infer");
  try {
    header("A load that must evict first vs a plain load (100 MB, budget 180 MiB)");
    const plain: number[] = [];
    const evicting: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      let t = performance.now();
      await job(server.url, token, "POST", "/api/v1/models/a/load");
      plain.push(performance.now() - t);
      t = performance.now();
      const b = await job(server.url, token, "POST", "/api/v1/models/b/load"); // evicts a
      evicting.push(performance.now() - t);
      if ((await api(server.url, token, "GET", "/api/v1/models/a")).state !== "unloaded") throw new Error(`loading b did not evict a: ${JSON.stringify(b)}`);
      await job(server.url, token, "POST", "/api/v1/models/b/unload");
    }
    const evictions = (await api(server.url, token, "GET", `/api/v1/jobs?reason=evicted&limit=200`)).jobs.length;
    const p = stats(plain);
    const e = stats(evicting);
    console.log(`plain load:          ${fmtStats(p)}`);
    console.log(`load + eviction:     ${fmtStats(e)} (${evictions} eviction jobs)`);
    console.log(`ratio (median): ${(e.median / p.median).toFixed(2)}x, overhead ${(e.median - p.median).toFixed(1)} ms (the evicted session's drain, release and exit)`);

    header("First request to an unloaded model: on-demand load vs a load job, then the request");
    const body = JSON.stringify({ inputs: [{ name: "i", datatype: "INT64", shape: [1], data: [3] }] });
    const request = () =>
      fetch(`${server.url}/v2/models/a/infer`, { method: "POST", headers: { authorization: `Bearer ${infer}`, "content-type": "application/json" }, body });
    const onDemand: number[] = [];
    const explicit: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      let t = performance.now();
      const res = await request();
      if (!res.ok) throw new Error(`on-demand request: ${res.status} ${await res.text()}`);
      onDemand.push(performance.now() - t);
      await job(server.url, token, "POST", "/api/v1/models/a/unload");
      t = performance.now();
      await job(server.url, token, "POST", "/api/v1/models/a/load");
      if (!(await request()).ok) throw new Error("request after load failed");
      explicit.push(performance.now() - t);
      await job(server.url, token, "POST", "/api/v1/models/a/unload");
    }
    const o = stats(onDemand);
    const x = stats(explicit);
    console.log(`on-demand request:        ${fmtStats(o)}`);
    console.log(`load job, then request:   ${fmtStats(x)}`);
    console.log(`ratio (median): ${(o.median / x.median).toFixed(2)}x`);
  } finally {
    await server.stop();
    removeDir(dir);
  }
}

export async function benchMemory(): Promise<void> {
  await benchCycles();
  await benchAdmission();
}

if (import.meta.main) await benchMemory();
