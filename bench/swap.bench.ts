// Issue 8: swapping a model's version under load. The same concurrency-16
// inference load with and without back-to-back swaps, the worst single
// request while a swap runs, failed requests (must be 0), and the swap job's
// wall time against a raw InferenceSession.create of the new file.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bigModel } from "../test/fixtures/onnx-builder";
import { adminToken, api, fmtStats, hammer, header, rawCreateMs, removeDir, startModeld, stats, tempDir } from "./lib";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONCURRENCY = 16;
const MEGABYTES = 100;

export async function benchSwap(): Promise<void> {
  const dir = tempDir();
  for (const v of ["1", "2"]) {
    mkdirSync(join(dir, "models", "m", v), { recursive: true });
    writeFileSync(join(dir, "models", "m", v, "model.onnx"), bigModel(MEGABYTES));
  }
  const server = await startModeld(dir);
  const admin = await adminToken();
  const infer = await adminToken("infer");
  try {
    const swapTo = async (version: string) => {
      const job = await api(server.url, admin, "POST", "/api/v1/models/m/load", { version });
      const done = await api(server.url, admin, "GET", `/api/v1/jobs/${job.id}?wait=60`);
      if (done.state !== "completed") throw new Error(`swap to ${version}: ${JSON.stringify(done)}`);
      return done;
    };
    await swapTo("1");
    const body = JSON.stringify({ inputs: [{ name: "i", datatype: "INT64", shape: [1], data: [3] }] });
    const send = () =>
      fetch(`${server.url}/v2/models/m/infer`, { method: "POST", headers: { authorization: `Bearer ${infer}`, "content-type": "application/json" }, body });
    await hammer(CONCURRENCY, 1, send); // warm-up

    header(`Swap under load: ${MEGABYTES} MB model, concurrency ${CONCURRENCY}, ${SECONDS} s each`);
    const quiet = await hammer(CONCURRENCY, SECONDS, send);

    const windows: [number, number][] = [];
    const swapMs: number[] = [];
    let running = true;
    const swapper = (async () => {
      for (let v = 2; running; v = 3 - v) {
        const t = performance.now();
        await swapTo(String(v));
        windows.push([t, performance.now()]);
        swapMs.push(performance.now() - t);
      }
    })();
    const busy = await hammer(CONCURRENCY, SECONDS, send);
    running = false;
    await swapper;

    const overlapping = busy.latencies.filter((lat, i) => windows.some(([a, b]) => busy.starts[i]! <= b && busy.starts[i]! + lat >= a));
    const q = stats(quiet.latencies);
    const s = stats(busy.latencies);
    console.log(`no swap:         ${quiet.rps.toFixed(0)} req/s, p50 ${q.median.toFixed(2)} ms, p99 ${q.p99.toFixed(2)} ms, worst ${q.max.toFixed(2)} ms, failed ${quiet.errors}`);
    console.log(`swapping:        ${busy.rps.toFixed(0)} req/s, p50 ${s.median.toFixed(2)} ms, p99 ${s.p99.toFixed(2)} ms, worst ${s.max.toFixed(2)} ms, failed ${busy.errors}`);
    console.log(`${windows.length} swaps ran back to back; ${overlapping.length} requests overlapped one; worst of those ${Math.max(0, ...overlapping).toFixed(2)} ms`);
    console.log(`ratio swapping / no swap: throughput ${((busy.rps / quiet.rps) * 100).toFixed(0)}%, p99 ${(s.p99 / q.p99).toFixed(2)}x`);
    console.log(`failed requests while swapping: ${busy.errors} (must be 0)`);

    header(`Swap job wall time vs raw InferenceSession.create of the new file (${MEGABYTES} MB, no load)`);
    const raw: number[] = [];
    const idleSwaps: number[] = [];
    const path = join(dir, "models", "m", "2", "model.onnx");
    for (let i = 0; i < 5; i++) {
      raw.push(await rawCreateMs(path));
      // Always to the version not serving: a load of the serving one is `already-loaded`, not a swap.
      const serving = (await api(server.url, admin, "GET", "/api/v1/models/m")).servingVersion;
      const t = performance.now();
      const done = await swapTo(serving === "1" ? "2" : "1");
      idleSwaps.push(performance.now() - t);
      if (!done.outcome.replaced) throw new Error(`not a swap: ${JSON.stringify(done.outcome)}`);
    }
    const r = stats(raw);
    const w = stats(idleSwaps);
    console.log(`raw create:      ${fmtStats(r)}`);
    console.log(`swap job:        ${fmtStats(w)}`);
    console.log(`swap job under load: ${fmtStats(stats(swapMs))}`);
    console.log(`ratio (median swap job / raw create): ${(w.median / r.median).toFixed(2)}x, overhead ${(w.median - r.median).toFixed(1)} ms`);
  } finally {
    await server.stop();
    removeDir(dir);
  }
}

if (import.meta.main) await benchSwap();
