// Where a tiny-model request's time goes, end to end, at concurrency 1: the
// HTTP floor (a bare Hono JSON POST), the token check (modeld with and without
// auth), and inside modeld the phases its statistics measure (decode, the hop
// to the worker and back, session.run, building the response), against raw
// onnxruntime-node in this process.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startBinary } from "../test/fixtures/binary";
import { affineModel } from "../test/fixtures/onnx-builder";
import { adminToken, hammer, header, loadAndWait, rawRuns, removeDir, repo, startModeld, stats, tempDir, tinyFeeds, WARMUP_SECONDS } from "./lib";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const us = (ms: number) => `${Math.round(ms * 1000)} µs`;

type Snapshot = Record<string, { count: number; ns: number }>;
async function phases(url: string, token: string): Promise<Snapshot> {
  const res = await fetch(`${url}/v2/models/tiny/stats`, { headers: { authorization: `Bearer ${token}` } });
  return ((await res.json()) as any).model_stats[0].inference_stats;
}
const perRequestMs = (a: Snapshot, b: Snapshot, k: string) => (b[k]!.ns - a[k]!.ns) / 1e6 / Math.max(1, b[k]!.count - a[k]!.count);

export async function benchProfile(): Promise<void> {
  const dir = tempDir();
  const open = tempDir();
  for (const d of [dir, open]) {
    mkdirSync(join(d, "models"), { recursive: true });
    writeFileSync(join(d, "models", "tiny.onnx"), affineModel());
  }
  const modeld = await startModeld(dir);
  const anonymous = await startModeld(open, { MODELD_PUBLIC_INFERENCE: "true" });
  const bare = await startBinary([process.execPath, join(repo, "bench/bare-hono.ts")], {}, repo);
  const admin = await adminToken();
  const infer = await adminToken("infer");
  try {
    for (const s of [modeld, anonymous]) await loadAndWait(s.url, admin, "tiny");
    const body = JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }] });
    const json = { "content-type": "application/json" };
    const post = (url: string, headers: Record<string, string>) => () => fetch(url, { method: "POST", headers, body });
    const withToken = post(`${modeld.url}/v2/models/tiny/infer`, { ...json, authorization: `Bearer ${infer}` });
    const noToken = post(`${anonymous.url}/v2/models/tiny/infer`, json);
    const floor = post(`${bare.url}/`, json);
    for (const f of [withToken, noToken, floor]) await hammer(4, WARMUP_SECONDS, f);

    // Interleaved rounds, so drift on a shared host hits every server alike.
    const lat = { withToken: [] as number[], noToken: [] as number[], floor: [] as number[] };
    const before = await phases(modeld.url, admin);
    for (let round = 0; round < 5; round++) {
      lat.withToken.push(...(await hammer(1, SECONDS / 5, withToken)).latencies);
      lat.noToken.push(...(await hammer(1, SECONDS / 5, noToken)).latencies);
      lat.floor.push(...(await hammer(1, SECONDS / 5, floor)).latencies);
    }
    const after = await phases(modeld.url, admin);
    const raw = stats((await rawRuns(join(dir, "models", "tiny.onnx"), tinyFeeds, SECONDS)).latencies);
    const [m, a, f] = [stats(lat.withToken), stats(lat.noToken), stats(lat.floor)];

    header("Tiny model, concurrency 1: where a request's time goes");
    console.log("| measure | p50 | p99 |\n| --- | --- | --- |");
    console.log(`| modeld, infer token | ${us(m.median)} | ${us(m.p99)} |`);
    console.log(`| modeld, MODELD_PUBLIC_INFERENCE (no token) | ${us(a.median)} | ${us(a.p99)} |`);
    console.log(`| bare Hono JSON POST (HTTP + client floor) | ${us(f.median)} | ${us(f.p99)} |`);
    console.log(`| raw session.run in one process | ${us(raw.median)} | ${us(raw.p99)} |`);
    const inside = perRequestMs(before, after, "success");
    const parts = {
      "decode + ORT tensors (compute_input)": perRequestMs(before, after, "compute_input"),
      "hop to the worker and back, waiting (queue)": perRequestMs(before, after, "queue"),
      "session.run in the worker (compute_infer)": perRequestMs(before, after, "compute_infer"),
      "outputs + response object (compute_output)": perRequestMs(before, after, "compute_output"),
    };
    console.log(`\nInside modeld's infer(), means from its own statistics over ${after.success!.count - before.success!.count} requests:\n`);
    console.log("| phase | mean |\n| --- | --- |");
    for (const [k, v] of Object.entries(parts)) console.log(`| ${k} | ${us(v)} |`);
    console.log(`| total inside infer() | ${us(inside)} |`);
    console.log(`\nAround it (p50 differences): the token check ${us(m.median - a.median)}; routing, middleware, body parsing and validation, and JSON out ${us(a.median - f.median - inside)}; the HTTP floor ${us(f.median)}.`);
    console.log(`p50 overhead over raw: ${us(m.median - raw.median)} (target ≤ 100 µs); p99 ${us(m.p99)} (target ≤ max(600 µs, 1.5 × the floor's p99 = ${us(1.5 * f.p99)}))`);
  } finally {
    for (const s of [modeld, anonymous, bare]) await s.stop();
    removeDir(dir);
    removeDir(open);
  }
}
