// The tiny model through wrk, the load generator the issue's own figures came
// from, against two floors measured in the same interleaved rounds: a bare
// Hono server (HTTP alone), and bench/bare-worker.ts, modeld's architecture
// with nothing else (Hono, JSON, one worker thread running the session). The
// gap to the second floor is what modeld's own code costs; the floor's gap to
// the targets is what the architecture costs on this host.
//
// On Linux it also reads each thread's CPU time from /proc, so the cost per
// request is split by thread: the HTTP thread is what saturates at c=64.
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../src/config";
import { startBinary, type RunningBinary } from "../test/fixtures/binary";
import { affineModel } from "../test/fixtures/onnx-builder";
import { adminToken, api, header, loadAndWait, median, rawRuns, removeDir, repo, startModeld, stats, tempDir, tinyFeeds, WARMUP_SECONDS } from "./lib";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const PER_RUN = Math.max(2, Math.round((SECONDS * 2) / ROUNDS));

const wrkPath = () => ["/usr/bin/wrk", "/usr/local/bin/wrk"].find(existsSync);

interface WrkRun {
  rps: number;
  requests: number;
  /** µs */
  p50: number;
  p90: number;
  p99: number;
  non2xx: number;
}

const toUs = (s: string) => (s.endsWith("us") ? parseFloat(s) : s.endsWith("ms") ? parseFloat(s) * 1000 : parseFloat(s) * 1e6);

/** One wrk thread, as the figures used; `script` sets the POST body and headers, none means GET. */
function wrk(bin: string, url: string, connections: number, script?: string, seconds = PER_RUN): WrkRun {
  const out = Bun.spawnSync([bin, "-t1", `-c${connections}`, `-d${seconds}s`, "--latency", ...(script ? ["-s", script] : []), url]).stdout.toString();
  const q = (p: string) => toUs(new RegExp(`\\s${p}%\\s+(\\S+)`).exec(out)?.[1] ?? "NaN");
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]),
    requests: Number(/(\d+) requests in/.exec(out)?.[1]),
    p50: q("50"),
    p90: q("90"),
    p99: q("99"),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
  };
}

type ThreadKind = "http" | "workers" | "other";
type Ticks = Map<string, { kind: ThreadKind; ticks: number }>;

/** CPU ticks (1/100 s, user + system) of each thread: the HTTP thread, worker threads, the rest (JIT, GC, timers). */
function threadTicks(pid: number): Ticks | undefined {
  if (!existsSync(`/proc/${pid}/task`)) return undefined;
  const t: Ticks = new Map();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim();
      const f = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8").split(") ")[1]!.split(" ");
      t.set(tid, { kind: tid === String(pid) ? "http" : comm === "Worker" ? "workers" : "other", ticks: Number(f[11]) + Number(f[12]) });
    } catch {} // a thread that ended meanwhile
  }
  return t;
}

/** µs of CPU per request by thread kind, over the threads alive at both readings. */
function cpuPerRequest(before: Ticks, after: Ticks, requests: number): Record<ThreadKind, number> {
  const out: Record<ThreadKind, number> = { http: 0, workers: 0, other: 0 };
  for (const [tid, a] of after) {
    const b = before.get(tid);
    if (b) out[a.kind] += ((a.ticks - b.ticks) * 10_000) / requests;
  }
  return out;
}

function postScript(dir: string, body: string, token?: string): string {
  const path = join(dir, `post-${token ? "auth" : "open"}.lua`);
  const auth = token ? `wrk.headers["authorization"]="Bearer ${token}"\n` : "";
  writeFileSync(path, `wrk.method="POST"\nwrk.body=[[${body}]]\nwrk.headers["content-type"]="application/json"\n${auth}`);
  return path;
}

const us = (v: number) => `${Math.round(v)} µs`;
const spread = (xs: number[], digits = 0) => `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`;

export async function benchFloor(): Promise<void> {
  header("Tiny model through wrk: modeld against its architecture's floor");
  const bin = wrkPath();
  if (!bin) {
    console.log("skipped: wrk is not installed (Debian: apt-get install wrk)");
    return;
  }
  const dir = tempDir();
  mkdirSync(join(dir, "models"), { recursive: true });
  const model = join(dir, "models", "tiny.onnx");
  writeFileSync(model, affineModel());
  const servers: { name: string; server: RunningBinary; path: string; token: boolean }[] = [];
  try {
    // Each server in pairs: the session worker staying awake after a lone request, as
    // modeld does by default (MODELD_SPIN_US), and sleeping at once.
    const spinUs = String(loadConfig({}).runtime.spinUs);
    const modeld = await startModeld(dir);
    const modeldAsleep = await startModeld(dir, { MODELD_DATA_DIR: join(dir, "data-asleep"), MODELD_SPIN_US: "0" });
    // The c=64 target's own remedy: runs that arrive together merged into one session.run.
    const modeldBatched = await startModeld(dir, { MODELD_DATA_DIR: join(dir, "data-batched") });
    const patched = await api(modeldBatched.url, await adminToken(), "PATCH", "/api/v1/models/tiny", { batching: { maxBatchSize: 64 } });
    if (patched.batching?.maxBatchSize !== 64) throw new Error(`batching was not set: ${JSON.stringify(patched)}`);
    const bareWorker = (env: Record<string, string>) => startBinary([process.execPath, join(repo, "bench/bare-worker.ts")], { BENCH_MODEL: model, ...env }, repo);
    const bare = await startBinary([process.execPath, join(repo, "bench/bare-hono.ts")], {}, repo);
    servers.push({ name: `modeld (infer token; worker spin ${spinUs} µs, the default)`, server: modeld, path: "/v2/models/tiny/infer", token: true });
    servers.push({ name: `floor: Hono + one ORT worker (spin ${spinUs} µs)`, server: await bareWorker({ BENCH_SPIN_US: spinUs }), path: "/", token: false });
    servers.push({ name: "modeld, MODELD_SPIN_US=0", server: modeldAsleep, path: "/v2/models/tiny/infer", token: true });
    servers.push({ name: "floor: Hono + one ORT worker (no spin)", server: await bareWorker({}), path: "/", token: false });
    servers.push({ name: "floor: bare Hono JSON POST", server: bare, path: "/", token: false });
    servers.push({ name: "modeld, batching {maxBatchSize: 64}", server: modeldBatched, path: "/v2/models/tiny/infer", token: true });
    for (const s of [modeld, modeldAsleep, modeldBatched]) await loadAndWait(s.url, await adminToken(), "tiny");
    const body = JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }] });
    const scripts = { auth: postScript(dir, body, await adminToken("infer")), open: postScript(dir, body) };
    const script = (s: (typeof servers)[number]) => (s.token ? scripts.auth : scripts.open);

    const c1: Record<string, WrkRun[]> = {};
    const c64: Record<string, WrkRun[]> = {};
    const cpu: Record<string, { http: number[]; workers: number[]; other: number[] }> = {};
    const bareGet: number[] = [];
    const bareGetC1: number[] = [];
    for (const s of servers) wrk(bin, s.server.url + s.path, 4, script(s), WARMUP_SECONDS);
    for (let round = 0; round < ROUNDS; round++) {
      for (const s of servers) {
        (c1[s.name] ??= []).push(wrk(bin, s.server.url + s.path, 1, script(s)));
        const before = threadTicks(s.server.proc.pid);
        const run = wrk(bin, s.server.url + s.path, 64, script(s));
        const after = threadTicks(s.server.proc.pid);
        (c64[s.name] ??= []).push(run);
        if (before && after) {
          const per = cpuPerRequest(before, after, run.requests);
          const c = (cpu[s.name] ??= { http: [], workers: [], other: [] });
          c.http.push(per.http);
          c.workers.push(per.workers);
          c.other.push(per.other);
        }
      }
      bareGetC1.push(wrk(bin, bare.url + "/", 1).p99);
      bareGet.push(wrk(bin, bare.url + "/", 64).rps);
    }
    const raw = await rawRuns(model, tinyFeeds, SECONDS);
    const rawP50 = stats(raw.latencies).median * 1000;

    console.log(`wrk ${ROUNDS} interleaved rounds of ${PER_RUN} s per server and concurrency, after ${WARMUP_SECONDS} s of warm-up each; medians of the rounds (range).\n`);
    console.log("| server | c=1 p50 | c=1 p90 | c=1 p99 | c=64 req/s | HTTP thread CPU/req | worker CPU/req | other threads CPU/req |");
    console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (const s of servers) {
      const a = c1[s.name]!;
      const b = c64[s.name]!;
      const c = cpu[s.name];
      const cell = (xs: number[] | undefined) => (xs ? `${us(median(xs))} (${spread(xs)})` : "—");
      console.log(
        `| ${s.name} | ${cell(a.map((r) => r.p50))} | ${us(median(a.map((r) => r.p90)))} | ${cell(a.map((r) => r.p99))} | ${median(b.map((r) => r.rps)).toFixed(0)} (${spread(b.map((r) => r.rps))}) | ${cell(c?.http)} | ${cell(c?.workers)} | ${cell(c?.other)} |`,
      );
    }
    const failed = servers.reduce((n, s) => n + [...c1[s.name]!, ...c64[s.name]!].reduce((m, r) => m + r.non2xx, 0), 0);
    console.log(`| floor: bare Hono GET | | | ${us(median(bareGetC1))} (${spread(bareGetC1)}) | ${median(bareGet).toFixed(0)} (${spread(bareGet)}) | | | |`);
    console.log(`| raw session.run, one process, one at a time | ${us(rawP50)} | | ${us(stats(raw.latencies).p99 * 1000)} | ${raw.rps.toFixed(0)} runs/s | | | |`);
    console.log(`\nnon-2xx responses: ${failed} (must be 0)`);

    const [m, floor, mAsleep, floorAsleep, , mBatched] = servers.map((s) => s.name) as [string, string, string, string, string, string];
    const p50 = (n: string) => median(c1[n]!.map((r) => r.p50));
    const p99 = (n: string) => median(c1[n]!.map((r) => r.p99));
    const rps = (n: string) => median(c64[n]!.map((r) => r.rps));
    const p99Target = Math.max(600, 1.5 * median(bareGetC1));
    console.log(`\nmodeld over its floor: c=1 p50 +${us(p50(m) - p50(floor))}, c=64 ${((rps(m) / rps(floor)) * 100).toFixed(0)}% of the floor's throughput`);
    const pct = (a: number, b: number) => `${a > b ? "+" : ""}${(((a - b) / b) * 100).toFixed(0)}%`;
    for (const [name, spin, asleep] of [["modeld", m, mAsleep], ["the floor", floor, floorAsleep]] as const) {
      console.log(`the worker's spin, ${name}: c=1 p50 ${us(p50(spin))} against ${us(p50(asleep))} asleep (${pct(p50(spin), p50(asleep))}), p99 ${us(p99(spin))} against ${us(p99(asleep))}; c=64 ${rps(spin).toFixed(0)} against ${rps(asleep).toFixed(0)} req/s (${pct(rps(spin), rps(asleep))})`);
    }
    console.log(`targets: c=1 p50 ≤ raw + 100 µs = ${us(rawP50 + 100)}: modeld ${us(p50(m))}, the floor ${us(p50(floor))}`);
    console.log(`         c=1 p99 ≤ max(600 µs, 1.5 × bare Hono GET p99) = ${us(p99Target)}: modeld ${us(p99(m))}, the floor ${us(p99(floor))}`);
    console.log(`         c=64 ≥ 35% of a bare Hono GET (${(0.35 * median(bareGet)).toFixed(0)} req/s) and above raw one-at-a-time (${raw.rps.toFixed(0)}/s): modeld ${rps(m).toFixed(0)}, batched ${rps(mBatched).toFixed(0)}, the floor ${rps(floor).toFixed(0)}`);
  } finally {
    for (const s of servers) await s.server.stop();
    removeDir(dir);
  }
}

if (import.meta.main) await benchFloor();
