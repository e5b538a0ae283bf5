// The batching queue delay (maxQueueDelayUs): what a lone request really waits,
// against the same model batched with no delay, in interleaved rounds. A lone
// request never reaches a preferred size, so it waits the whole delay: the
// target is that its wait grows by the configured delay, and no more. Two
// measures of the wait: the client's p50, and modeld's own queue time (from the
// request's arrival on the HTTP thread to its run), which leaves out the slower
// wake-ups of threads that slept longer.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { affineModel } from "../test/fixtures/onnx-builder";
import { adminToken, api, hammer, header, loadAndWait, median, removeDir, startModeld, stats, tempDir, WARMUP_SECONDS } from "./lib";

const ROUNDS = 5;
const ROUND_SECONDS = Number(process.env.BENCH_SECONDS ?? 5) / 2;
const DELAYS_US = [0, 250, 1000];

export async function benchBatching(): Promise<void> {
  const dir = tempDir();
  const models = join(dir, "models");
  mkdirSync(models, { recursive: true });
  for (const us of DELAYS_US) writeFileSync(join(models, `tiny-delay-${us}.onnx`), affineModel());
  const server = await startModeld(dir);
  const admin = await adminToken();
  const token = await adminToken("infer");
  try {
    for (const us of DELAYS_US) {
      await api(server.url, admin, "PATCH", `/api/v1/models/tiny-delay-${us}`, { batching: { maxBatchSize: 64, maxQueueDelayUs: us } });
      await loadAndWait(server.url, admin, `tiny-delay-${us}`);
    }
    header("Batching queue delay: a lone request's wait (tiny model, concurrency 1)");
    const body = JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }] });
    const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
    const infer = (us: number) => () => fetch(`${server.url}/v2/models/tiny-delay-${us}/infer`, { method: "POST", headers, body });
    for (const us of DELAYS_US) await hammer(1, WARMUP_SECONDS / DELAYS_US.length, infer(us));
    const queueStats = async (us: number) => {
      const s = (await api(server.url, token, "GET", `/v2/models/tiny-delay-${us}/stats`)).model_stats[0].inference_stats;
      return { count: s.success.count as number, queueNs: s.queue.ns as number };
    };
    const p50s = new Map<number, number[]>(DELAYS_US.map((us) => [us, []]));
    const queued = new Map<number, number[]>(DELAYS_US.map((us) => [us, []]));
    for (let r = 0; r < ROUNDS; r++) {
      for (const us of DELAYS_US) {
        const before = await queueStats(us);
        p50s.get(us)!.push(stats((await hammer(1, ROUND_SECONDS, infer(us))).latencies).median * 1000);
        const after = await queueStats(us);
        queued.get(us)!.push((after.queueNs - before.queueNs) / (after.count - before.count) / 1000);
      }
    }
    console.log(`${ROUNDS} interleaved rounds of ${ROUND_SECONDS} s per setting; medians of the rounds (client p50; modeld's queue time, mean per request)`);
    const rounds = (xs: number[]) => xs.map((v) => v.toFixed(0)).join(", ");
    const base = { p50: median(p50s.get(0)!), queue: median(queued.get(0)!) };
    console.log(`maxQueueDelayUs 0 (the reference): p50 ${base.p50.toFixed(0)} µs (${rounds(p50s.get(0)!)}); queue ${base.queue.toFixed(0)} µs (${rounds(queued.get(0)!)})`);
    for (const us of DELAYS_US.filter((d) => d > 0)) {
      const p50 = median(p50s.get(us)!);
      const queue = median(queued.get(us)!);
      console.log(
        `maxQueueDelayUs ${us}: p50 ${p50.toFixed(0)} µs (${rounds(p50s.get(us)!)}), +${(p50 - base.p50).toFixed(0)} µs = ${((p50 - base.p50) / us).toFixed(2)}x the delay; ` +
          `queue ${queue.toFixed(0)} µs (${rounds(queued.get(us)!)}), +${(queue - base.queue).toFixed(0)} µs = ${((queue - base.queue) / us).toFixed(2)}x the delay (target 1x)`,
      );
    }
  } finally {
    await server.stop();
    removeDir(dir);
  }
}
