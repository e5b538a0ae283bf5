// A Prometheus scrape against a big registry: how long it takes, and what it does to
// /v2/health/live answered meanwhile (the scrape runs on the HTTP thread); and the
// other reads of the whole registry, which run there too. The
// references are the same server's idle health latency, and prom-client's own
// default registry scraped in this process.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { affineModel } from "../test/fixtures/onnx-builder";
import { adminToken, api, fmtStats, header, loadAndWait, removeDir, startModeld, stats, tempDir } from "./lib";

const MODELS = 500;
const LOADED = 20;
const SCRAPES = 50;
const PROBES = 500;

async function timed(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await f();
  return performance.now() - t;
}

export async function benchMetrics(): Promise<void> {
  const dir = tempDir();
  for (let i = 0; i < MODELS; i++) {
    mkdirSync(join(dir, "models", `m${i}`, "1"), { recursive: true });
    writeFileSync(join(dir, "models", `m${i}`, "1", "model.onnx"), affineModel(i, 1));
  }
  const server = await startModeld(dir);
  try {
    const token = await adminToken();
    for (let i = 0; i < LOADED; i++) await loadAndWait(server.url, token, `m${i}`);
    for (let i = 0; i < 3; i++) await api(server.url, token, "POST", `/v2/models/m${i}/infer`, { inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }] });
    const scrape = () => fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.arrayBuffer());
    const probe = () => fetch(`${server.url}/v2/health/live`).then((r) => r.arrayBuffer());

    header(`A Prometheus scrape with ${MODELS} registered models (${LOADED} loaded)`);
    for (let i = 0; i < 10; i++) await scrape();
    const scrapes: number[] = [];
    for (let i = 0; i < SCRAPES; i++) scrapes.push(await timed(scrape));
    const bytes = (await scrape()).byteLength;

    const pc = await import("prom-client");
    const reference = new pc.Registry();
    pc.collectDefaultMetrics({ register: reference });
    for (let i = 0; i < 10; i++) await reference.metrics();
    const defaults: number[] = [];
    for (let i = 0; i < SCRAPES; i++) defaults.push(await timed(() => reference.metrics()));

    for (let i = 0; i < 100; i++) await probe();
    const idle: number[] = [];
    for (let i = 0; i < PROBES; i++) idle.push(await timed(probe));
    let scraping = true;
    const scraper = (async () => {
      while (scraping) await scrape();
    })();
    const during: number[] = [];
    for (let i = 0; i < PROBES; i++) during.push(await timed(probe));
    scraping = false;
    await scraper;

    const s = stats(scrapes);
    console.log(`modeld /metrics (${(bytes / 1024).toFixed(0)} KiB): ${fmtStats(s)}`);
    console.log(`prom-client's default registry alone, in this process: ${fmtStats(stats(defaults))}`);
    const reads: [string, string, string][] = [
      ["GET", "/api/v1/models", "the model list"],
      ["POST", "/v2/repository/index", "Triton's repository index"],
      ["GET", "/v2/models/stats", "every version's statistics"],
    ];
    const readTimes = [];
    for (const [method, path, what] of reads) {
      const read = () => fetch(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${token}` } }).then((r) => r.arrayBuffer());
      for (let i = 0; i < 5; i++) await read();
      const times: number[] = [];
      for (let i = 0; i < SCRAPES; i++) times.push(await timed(read));
      readTimes.push(`${what} (${method} ${path}, ${((await read()).byteLength / 1024).toFixed(0)} KiB): ${fmtStats(stats(times))}`);
    }
    const a = stats(idle);
    const b = stats(during);
    console.log(`/v2/health/live idle:                 ${fmtStats(a)}; p99 ${a.p99.toFixed(2)} ms`);
    console.log(`/v2/health/live, scrapes back to back: ${fmtStats(b)}; p99 ${b.p99.toFixed(2)} ms, ${(b.p99 / a.p99).toFixed(2)}x idle`);
    header(`Reads of the whole registry (${MODELS} models), on the HTTP thread like a scrape`);
    for (const line of readTimes) console.log(line);
  } finally {
    await server.stop();
    removeDir(dir);
  }
}

if (import.meta.main) await benchMetrics();
