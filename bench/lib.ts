// Shared benchmark helpers: stats, a modeld child process, an HTTP load loop.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT } from "jose";
import * as ort from "onnxruntime-node";
import { startBinary, type RunningBinary } from "../test/fixtures/binary";

export const repo = join(import.meta.dir, "..");

/**
 * How long a server takes requests before a latency or throughput figure counts:
 * JavaScriptCore keeps compiling modeld's request path for about 10 s of traffic after
 * a start (its JIT thread took 66 µs per request over the first 5 s at c=1, under 1 µs
 * from the tenth second on), so shorter warm-ups measure the compiler.
 */
export const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 10);
export const SECRET = "bench-secret-that-is-at-least-32-bytes!!";

export interface Stats {
  median: number;
  p99: number;
  min: number;
  max: number;
  /** Interquartile range: the spread of the middle half. */
  iqr: number;
  n: number;
}

export function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * (s.length - 1)))]!;
  return { median: q(0.5), p99: q(0.99), min: s[0]!, max: s[s.length - 1]!, iqr: q(0.75) - q(0.25), n: s.length };
}

export const median = (xs: number[]): number => stats(xs).median;

export const fmt = (v: number, unit = "ms", digits = 2) => `${v.toFixed(digits)} ${unit}`;
export const fmtStats = (s: Stats, unit = "ms", digits = 2) =>
  `median ${fmt(s.median, unit, digits)} (IQR ${fmt(s.iqr, unit, digits)}, min ${fmt(s.min, unit, digits)}, max ${fmt(s.max, unit, digits)}, n=${s.n})`;

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "modeld-bench-"));
}
export const removeDir = (d: string) => rmSync(d, { recursive: true, force: true });

export async function adminToken(role = "admin"): Promise<string> {
  return new SignJWT({ role }).setProtectedHeader({ alg: "HS256" }).setSubject("bench").setExpirationTime("2h").sign(new TextEncoder().encode(SECRET));
}

/** modeld from source in its own process, as `npm start` runs it. */
export function startModeld(dir: string, env: Record<string, string> = {}): Promise<RunningBinary> {
  return startBinary(
    [process.execPath, join(repo, "src/main.ts"), "serve"],
    {
      MODELD_DATA_DIR: join(dir, "data"),
      MODELD_MODEL_DIR: join(dir, "models"),
      MODELD_JWT_SECRET: SECRET,
      MODELD_RESTORE: "false",
      ...env,
    },
    repo,
  );
}

export async function api(url: string, token: string, method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return res.json();
}

export async function loadAndWait(url: string, token: string, id: string): Promise<any> {
  const job = await api(url, token, "POST", `/api/v1/models/${id}/load`);
  return api(url, token, "GET", `/api/v1/jobs/${job.id}?wait=60`);
}

/**
 * `concurrency` loops send `make()` requests for `seconds`; returns per-request
 * latencies (ms), their start times (performance.now()) and the request rate.
 * Every non-2xx response, and every request that throws, counts as an error.
 */
export async function hammer(
  concurrency: number,
  seconds: number,
  make: () => Promise<Response>,
): Promise<{ latencies: number[]; starts: number[]; rps: number; errors: number }> {
  const latencies: number[] = [];
  const starts: number[] = [];
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  const loop = async () => {
    while (performance.now() < end) {
      const t = performance.now();
      let ok = false;
      try {
        const res = await make();
        await res.arrayBuffer();
        ok = res.ok;
      } catch {}
      starts.push(t);
      latencies.push(performance.now() - t);
      if (!ok) errors++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, loop));
  return { latencies, starts, rps: latencies.length / ((performance.now() - started) / 1000), errors };
}

/** How long a raw InferenceSession.create of `path` takes in this process, in ms; the session is released after. */
export async function rawCreateMs(path: string): Promise<number> {
  const t = performance.now();
  const session = await ort.InferenceSession.create(path);
  const ms = performance.now() - t;
  await session.release();
  return ms;
}

/** One raw onnxruntime-node session in this process, run one request at a time for `seconds` per call. */
export async function rawSession(path: string): Promise<{
  runs(feeds: () => Record<string, ort.Tensor>, seconds: number): Promise<{ latencies: number[]; rps: number }>;
  release(): Promise<void>;
}> {
  const s = await ort.InferenceSession.create(path);
  return {
    async runs(feeds, seconds) {
      const latencies: number[] = [];
      const started = performance.now();
      while (performance.now() < started + seconds * 1000) {
        const t = performance.now();
        await s.run(feeds());
        latencies.push(performance.now() - t);
      }
      return { latencies, rps: latencies.length / ((performance.now() - started) / 1000) };
    },
    release: () => s.release(),
  };
}

/** The reference: one session in this process, run one request at a time for `seconds`. */
export async function rawRuns(path: string, feeds: () => Record<string, ort.Tensor>, seconds: number): Promise<{ latencies: number[]; rps: number }> {
  const raw = await rawSession(path);
  try {
    return await raw.runs(feeds, seconds);
  } finally {
    await raw.release();
  }
}

/** The input of the tiny model (test/fixtures/onnx-builder's affineModel), as the benches' JSON bodies send it. */
export const tinyFeeds = () => ({ x: new ort.Tensor("float32", new Float32Array([1, 2, 3, 4]), [1, 4]) });

export function header(title: string): void {
  console.log(`\n## ${title}\n`);
}
