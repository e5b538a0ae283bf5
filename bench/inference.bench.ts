// Issue 3: inference latency and throughput against raw onnxruntime-node in
// this process, a compute-bound model, binary vs JSON for a 4 MB tensor,
// tiny-model throughput against a bare Hono GET, /health while large JSON
// requests run, and an image classifier's shape.
import * as ort from "onnxruntime-node";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startBinary } from "../test/fixtures/binary";
import { affineModel, convClassifierModel, identityModel, matmulChainModel } from "../test/fixtures/onnx-builder";
import { adminToken, fmtStats, hammer, header, loadAndWait, median, rawRuns, rawSession, removeDir, repo, startModeld, stats, tempDir, tinyFeeds, WARMUP_SECONDS } from "./lib";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = 5;
const ROUND_SECONDS = Math.max(1, (2 * SECONDS) / ROUNDS);

export async function benchInference(): Promise<void> {
  const dir = tempDir();
  const models = join(dir, "models");
  mkdirSync(models, { recursive: true });
  writeFileSync(join(models, "tiny.onnx"), affineModel());
  writeFileSync(join(models, "tiny-batched.onnx"), affineModel());
  writeFileSync(join(models, "compute.onnx"), matmulChainModel(1024, 160));
  writeFileSync(join(models, "compute-batched.onnx"), matmulChainModel(1024, 160));
  writeFileSync(join(models, "wide.onnx"), identityModel("float32", [1, "n"]));
  writeFileSync(join(models, "classifier.onnx"), convClassifierModel());
  const server = await startModeld(dir, { MODELD_MAX_BODY_BYTES: String(64 * 1024 * 1024), MODELD_ALLOW_CLIENT_SHM: "true" });
  const bare = await startBinary([process.execPath, join(repo, "bench/bare-hono.ts")], {}, repo);
  const token = await adminToken("infer");
  const admin = await adminToken();
  try {
    for (const id of ["tiny-batched", "compute-batched"]) {
      await fetch(`${server.url}/api/v1/models/${id}`, {
        method: "PATCH",
        headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
        body: JSON.stringify({ batching: { maxBatchSize: 64 } }),
      });
    }
    for (const id of ["tiny", "tiny-batched", "compute", "compute-batched", "wide", "classifier"]) await loadAndWait(server.url, admin, id);
    const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" };

    header("Tiny model (y = 2x + 1, [1,4] float32): latency at concurrency 1");
    const tinyBody = JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }] });
    const infer = (id: string, body: string | Uint8Array, headers: Record<string, string> = auth) => () =>
      fetch(`${server.url}/v2/models/${id}/infer`, { method: "POST", headers, body });
    await hammer(4, WARMUP_SECONDS, infer("tiny", tinyBody));
    const m1 = await hammer(1, SECONDS, infer("tiny", tinyBody));
    const raw1 = await rawRuns(join(models, "tiny.onnx"), tinyFeeds, SECONDS);
    const ms = stats(m1.latencies);
    const rs = stats(raw1.latencies);
    console.log(`raw run:        ${fmtStats(rs, "ms", 3)}; p99 ${rs.p99.toFixed(3)} ms`);
    console.log(`modeld HTTP:    ${fmtStats(ms, "ms", 3)}; p99 ${ms.p99.toFixed(3)} ms`);
    console.log(`p50 overhead: ${((ms.median - rs.median) * 1000).toFixed(0)} µs (target ≤ 100 µs); p50 ratio ${(ms.median / rs.median).toFixed(1)}x; p99 ratio ${(ms.p99 / rs.p99).toFixed(1)}x`);

    header("Tiny model throughput at concurrency 64 vs a bare Hono GET");
    const bareRun = await hammer(64, SECONDS, () => fetch(`${bare.url}/`));
    const m64 = await hammer(64, SECONDS, infer("tiny", tinyBody));
    console.log(`bare Hono GET:  ${bareRun.rps.toFixed(0)} req/s (p99 ${stats(bareRun.latencies).p99.toFixed(2)} ms)`);
    console.log(`modeld infer:   ${m64.rps.toFixed(0)} req/s (p99 ${stats(m64.latencies).p99.toFixed(2)} ms, errors ${m64.errors})`);
    console.log(`raw run (one session, sequential): ${raw1.rps.toFixed(0)} runs/s`);
    console.log(`ratio modeld / bare Hono: ${((m64.rps / bareRun.rps) * 100).toFixed(0)}% (target ≥ 35%)`);
    const b64 = await hammer(64, SECONDS, infer("tiny-batched", tinyBody));
    console.log(`modeld infer, batching {maxBatchSize: 64}: ${b64.rps.toFixed(0)} req/s (p99 ${stats(b64.latencies).p99.toFixed(2)} ms, errors ${b64.errors}); ${((b64.rps / m64.rps) * 100).toFixed(0)}% of unbatched`);

    header("Compute-bound model (160 × MatMul 1024², a few ms per run): throughput");
    // Raw and modeld alternate in rounds, so the host's drift (it is shared) falls on both alike.
    const x = new Array(1024).fill(0.5);
    const computeBody = JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [1, 1024], data: x }] });
    const computeFeeds = () => ({ x: new ort.Tensor("float32", new Float32Array(1024).fill(0.5), [1, 1024]) });
    const raw = await rawSession(join(models, "compute.onnx"));
    const computeStats = async () => {
      const res = await fetch(`${server.url}/v2/models/compute/stats`, { headers: auth });
      const s = ((await res.json()) as { model_stats: { inference_stats: { success: { count: number }; compute_infer: { ns: number } } }[] }).model_stats[0]!.inference_stats;
      return { count: s.success.count, inferNs: s.compute_infer.ns };
    };
    const rawRounds: { latencies: number[]; rps: number }[] = [];
    const modeldRounds: { latencies: number[]; rps: number }[] = [];
    const inferMs: number[] = [];
    try {
      await raw.runs(computeFeeds, 1);
      await hammer(4, 1, infer("compute", computeBody));
      for (let r = 0; r < ROUNDS; r++) {
        rawRounds.push(await raw.runs(computeFeeds, ROUND_SECONDS));
        const before = await computeStats();
        modeldRounds.push(await hammer(4, ROUND_SECONDS, infer("compute", computeBody)));
        const after = await computeStats();
        inferMs.push((after.inferNs - before.inferNs) / (after.count - before.count) / 1e6);
      }
    } finally {
      await raw.release();
    }
    const rawRps = median(rawRounds.map((r) => r.rps));
    const modeldRps = median(modeldRounds.map((r) => r.rps));
    const rounds = (xs: number[], digits = 1) => xs.map((v) => v.toFixed(digits)).join(", ");
    console.log(`${ROUNDS} interleaved rounds of ${ROUND_SECONDS} s each; medians of the rounds`);
    console.log(`raw run:        ${rawRps.toFixed(1)} runs/s (rounds: ${rounds(rawRounds.map((r) => r.rps))}), run median ${median(rawRounds.flatMap((r) => r.latencies)).toFixed(2)} ms`);
    console.log(`modeld (c=4):   ${modeldRps.toFixed(1)} req/s (rounds: ${rounds(modeldRounds.map((r) => r.rps))}), session.run in its worker ${median(inferMs).toFixed(2)} ms (compute_infer per request)`);
    console.log(`ratio modeld / raw: ${((modeldRps / rawRps) * 100).toFixed(0)}% (target ≥ 95%); per round ${modeldRounds.map((m, i) => `${((m.rps / rawRounds[i]!.rps) * 100).toFixed(0)}%`).join(", ")}`);
    const mC16 = await hammer(16, SECONDS, infer("compute", computeBody));
    const bC16 = await hammer(16, SECONDS, infer("compute-batched", computeBody));
    console.log(`modeld (c=16):  ${mC16.rps.toFixed(1)} req/s, ${fmtStats(stats(mC16.latencies))}`);
    console.log(`modeld (c=16), batching {maxBatchSize: 64}: ${bC16.rps.toFixed(1)} req/s, ${fmtStats(stats(bC16.latencies))}; ${((bC16.rps / mC16.rps) * 100).toFixed(0)}% of unbatched, ${((bC16.rps / rawRps) * 100).toFixed(0)}% of raw one-at-a-time`);

    header("A 4 MB tensor ([1, 1048576] float32 identity): JSON, binary and system shared memory, concurrency 1");
    const n = 1024 * 1024;
    const values = Float32Array.from({ length: n }, (_, i) => (i % 1000) / 7);
    const jsonBody = JSON.stringify({ inputs: [{ name: "in", datatype: "FP32", shape: [1, n], data: Array.from(values) }] });
    const head = new TextEncoder().encode(
      JSON.stringify({ inputs: [{ name: "in", datatype: "FP32", shape: [1, n], parameters: { binary_data_size: n * 4 } }], parameters: { binary_data_output: true } }),
    );
    const binBody = new Uint8Array(head.length + n * 4);
    binBody.set(head, 0);
    binBody.set(new Uint8Array(values.buffer), head.length);
    const binHeaders = { authorization: `Bearer ${token}`, "content-type": "application/octet-stream", "inference-header-content-length": String(head.length) };
    const j = await hammer(1, SECONDS, infer("wide", jsonBody));
    const b = await hammer(1, SECONDS, infer("wide", binBody, binHeaders));
    const js = stats(j.latencies);
    const bs = stats(b.latencies);
    console.log(`JSON:    ${fmtStats(js)} (request ${(jsonBody.length / 1e6).toFixed(1)} MB)`);
    console.log(`binary:  ${fmtStats(bs)} (request ${(binBody.length / 1e6).toFixed(1)} MB)`);
    console.log(`ratio JSON / binary (median): ${(js.median / bs.median).toFixed(1)}x`);
    // As a tritonclient shm client works: the tensor placed in a mapped object once, the
    // output read where modeld wrote it; each request carries only the regions' names.
    const shmName = `modeld-bench-${process.pid}`;
    writeFileSync(join("/dev/shm", shmName), new Uint8Array(n * 8));
    try {
      const mapped = Bun.mmap(join("/dev/shm", shmName));
      mapped.set(new Uint8Array(values.buffer), 0);
      const registered = await fetch(`${server.url}/v2/systemsharedmemory/region/bench/register`, {
        method: "POST",
        headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
        body: JSON.stringify({ key: `/${shmName}`, byte_size: n * 8 }),
      });
      if (!registered.ok) throw new Error(`shared memory register: ${registered.status} ${await registered.text()}`);
      const region = (offset: number) => ({ shared_memory_region: "bench", shared_memory_offset: offset, shared_memory_byte_size: n * 4 });
      const shmBody = JSON.stringify({ inputs: [{ name: "in", datatype: "FP32", shape: [1, n], parameters: region(0) }], outputs: [{ name: "out", parameters: region(n * 4) }] });
      const output = new Float32Array(mapped.buffer, mapped.byteOffset + n * 4, n);
      const s = await hammer(1, SECONDS, async () => {
        const res = await infer("wide", shmBody)();
        if (res.ok && output[n - 1] !== values[n - 1]) throw new Error("the output in shared memory is not the input");
        return res;
      });
      const ss = stats(s.latencies);
      console.log(`shared memory: ${fmtStats(ss)} (request ${shmBody.length} bytes; ${s.errors} errors)`);
      console.log(`ratio binary / shared memory (median): ${(bs.median / ss.median).toFixed(1)}x`);
    } finally {
      rmSync(join("/dev/shm", shmName), { force: true });
    }

    header("/v2/health/live while 4 MB-tensor JSON requests run back to back");
    // The JSON requests come from a child process, so this one's polling keeps time.
    const healthPoll = async (ms: number) => {
      const lat: number[] = [];
      const end = performance.now() + ms;
      while (performance.now() < end) {
        const t = performance.now();
        await (await fetch(`${server.url}/v2/health/live`)).arrayBuffer();
        lat.push(performance.now() - t);
        await Bun.sleep(5);
      }
      return stats(lat);
    };
    const idleHealth = await healthPoll(2000);
    const bodyFile = join(dir, "json-4mb.json");
    writeFileSync(bodyFile, jsonBody);
    const loader = Bun.spawn([process.execPath, join(repo, "bench/json-loader.ts"), `${server.url}/v2/models/wide/infer`, token, bodyFile, String(SECONDS + 2)], { stdout: "pipe" });
    await Bun.sleep(1000);
    const busyHealth = await healthPoll(SECONDS * 1000);
    const sent = (await new Response(loader.stdout).text()).trim();
    await loader.exited;
    console.log(`idle:                   ${fmtStats(idleHealth)}; p99 ${idleHealth.p99.toFixed(2)} ms`);
    console.log(`during JSON requests:   ${fmtStats(busyHealth)}; p99 ${busyHealth.p99.toFixed(2)} ms (${sent})`);

    header("An image classifier's shape ([1, 3, 48, 192] float32; 3 convolutions and a head): c=1 and c=8 against raw");
    // The shape of the issue's real classifier row. Raw and modeld alternate in rounds.
    const pixels = 3 * 48 * 192;
    const image = Float32Array.from({ length: pixels }, (_, i) => ((i * 7) % 255) / 255);
    const imageJson = JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [1, 3, 48, 192], data: Array.from(image) }] });
    const imageHead = new TextEncoder().encode(JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [1, 3, 48, 192], parameters: { binary_data_size: pixels * 4 } }] }));
    const imageBin = new Uint8Array(imageHead.length + pixels * 4);
    imageBin.set(imageHead, 0);
    imageBin.set(new Uint8Array(image.buffer), imageHead.length);
    const imageBinHeaders = { ...binHeaders, "inference-header-content-length": String(imageHead.length) };
    const imageFeeds = () => ({ x: new ort.Tensor("float32", image.slice(), [1, 3, 48, 192]) });
    const classifier = await rawSession(join(models, "classifier.onnx"));
    const runsOf = { raw: [] as number[], json: [] as number[], binary: [] as number[] };
    const c8 = { raw: [] as number[], json: [] as number[], binary: [] as number[] };
    try {
      await classifier.runs(imageFeeds, 0.5);
      await hammer(1, 0.5, infer("classifier", imageJson));
      for (let r = 0; r < ROUNDS; r++) {
        const raw1 = await classifier.runs(imageFeeds, ROUND_SECONDS / 2);
        runsOf.raw.push(...raw1.latencies);
        c8.raw.push(raw1.rps);
        runsOf.json.push(...(await hammer(1, ROUND_SECONDS / 2, infer("classifier", imageJson))).latencies);
        runsOf.binary.push(...(await hammer(1, ROUND_SECONDS / 2, infer("classifier", imageBin, imageBinHeaders))).latencies);
        c8.json.push((await hammer(8, ROUND_SECONDS / 2, infer("classifier", imageJson))).rps);
        c8.binary.push((await hammer(8, ROUND_SECONDS / 2, infer("classifier", imageBin, imageBinHeaders))).rps);
      }
    } finally {
      await classifier.release();
    }
    const rawP50 = median(runsOf.raw);
    console.log(`request body: JSON ${(imageJson.length / 1e3).toFixed(0)} kB, binary ${(imageBin.length / 1e3).toFixed(0)} kB`);
    console.log(`c=1 raw run:        ${fmtStats(stats(runsOf.raw))}`);
    console.log(`c=1 modeld JSON:    ${fmtStats(stats(runsOf.json))}; p50 ${(median(runsOf.json) / rawP50).toFixed(2)}x raw`);
    console.log(`c=1 modeld binary:  ${fmtStats(stats(runsOf.binary))}; p50 ${(median(runsOf.binary) / rawP50).toFixed(2)}x raw`);
    console.log(`c=8 modeld JSON:    ${median(c8.json).toFixed(0)} req/s; binary ${median(c8.binary).toFixed(0)} req/s; raw one at a time ${median(c8.raw).toFixed(0)} runs/s (medians of ${ROUNDS} rounds)`);
  } finally {
    await server.stop();
    await bare.stop();
    removeDir(dir);
  }
}

if (import.meta.main) await benchInference();
