// Issue 9: memory that comes back, and what managing it costs.
// - RSS of the server after N load/unload cycles of a 400 MB model (N = 10,
//   100) against its RSS after one cycle, as `npm start` runs it and with the
//   allocator settings the systemd unit and the image ship.
// - A load job that must evict first against a plain load of the same file.
// - The first request to an unloaded model with on-demand loading, against a
//   load job followed by the same request.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bigModel } from "../test/fixtures/onnx-builder";
import { shippedAllocatorEnv } from "../scripts/shipped-env";
import { adminToken, api, fmtStats, header, removeDir, startModeld, stats, tempDir } from "./lib";

const CYCLES = (process.env.BENCH_CYCLES ?? "10,100").split(",").map(Number);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const MiB = 1024 * 1024;
const SETTLE_MS = 2000;

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
  // Two servers, cycled in turns so the host's drift falls on both: one as `npm start`
  // runs it, one with glibc's allocator set as the systemd unit and the image set it.
  const shipped = shippedAllocatorEnv();
  const variants = [
    { name: "as npm start runs it", env: {} },
    { name: `as shipped (${Object.entries(shipped).map(([k, v]) => `${k}=${v}`).join(" ")})`, env: shipped },
  ];
  const servers = await Promise.all(variants.map((v, i) => startModeld(join(dir, `server${i}`), { MODELD_MODEL_DIR: join(dir, "models"), ...v.env })));
  const token = await adminToken();
  try {
    header("RSS after N load/unload cycles of a 400 MB model");
    const cycle = async (url: string) => {
      await job(url, token, "POST", "/api/v1/models/big/load");
      return (await job(url, token, "POST", "/api/v1/models/big/unload")).outcome.reclaimedBytes as number;
    };
    // Once the spare thread has imported onnxruntime-node (250 ms after listening), so the
    // first cycle's growth compares with a server that imports its runtime at start.
    await Bun.sleep(SETTLE_MS);
    const start = servers.map((s) => rssOf(s.proc.pid));
    const reclaimed: number[] = [];
    for (const s of servers) reclaimed.push(await cycle(s.url));
    const baseline = servers.map((s) => rssOf(s.proc.pid));
    const rows: string[][] = variants.map((v, i) => [
      v.name,
      `${SETTLE_MS / 1000} s after start:      ${(start[i]! / MiB).toFixed(0)} MiB`,
      `after 1 cycle:        ${(baseline[i]! / MiB).toFixed(0)} MiB (the baseline; ${baseline[i]! >= start[i]! ? "+" : "-"}${(Math.abs(baseline[i]! - start[i]!) / MiB).toFixed(1)} MiB over one load and unload)`,
    ]);
    let done = 1;
    for (const n of CYCLES) {
      for (; done < n; done++) for (const s of servers) reclaimed.push(await cycle(s.url));
      servers.forEach((s, i) => {
        const rss = rssOf(s.proc.pid);
        const b = baseline[i]!;
        rows[i]!.push(`after ${String(n).padEnd(3)} cycles:      ${(rss / MiB).toFixed(0)} MiB = baseline ${rss >= b ? "+" : "-"}${((Math.abs(rss - b) / b) * 100).toFixed(1)}% (target ≤ +10%)`);
      });
    }
    for (const [name, ...lines] of rows) console.log(`${name}:\n${lines.map((l) => `  ${l}`).join("\n")}`);
    console.log(`reclaimedBytes per unload, both servers: ${fmtStats(stats(reclaimed.map((b) => b / MiB)), "MiB", 1)}`);
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
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
