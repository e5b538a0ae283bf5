// Dynamic batching: requests waiting while the session is busy share one run,
// and each still gets exactly the bytes it would have got alone.
import { describe, expect, test } from "bun:test";
import { buildModel, identityModel, matmulChainModel } from "../fixtures/onnx-builder";
import { token, useService, writeModel } from "../helpers";

/** y = x·W + b with uneven weights, so every output element depends on the whole row. */
function denseModel(): Uint8Array {
  const w = Array.from({ length: 16 * 8 }, (_, i) => Math.sin(i) * 0.37);
  const b = Array.from({ length: 8 }, (_, i) => i * 0.11 - 0.4);
  return buildModel({
    inputs: [{ name: "x", type: "float32", shape: ["batch", 16] }],
    outputs: [{ name: "y", type: "float32", shape: ["batch", 8] }, { name: "z", type: "float32", shape: ["batch", 8] }],
    initializers: [
      { name: "w", type: "float32", dims: [16, 8], values: w },
      { name: "b", type: "float32", dims: [8], values: b },
    ],
    nodes: [
      { op: "MatMul", inputs: ["x", "w"], outputs: ["xw"] },
      { op: "Add", inputs: ["xw", "b"], outputs: ["y"] },
      { op: "Relu", inputs: ["y"], outputs: ["z"] },
    ],
  });
}

/** y = table[i]: an index past the table fails inside ONNX Runtime. */
function lookupModel(): Uint8Array {
  return buildModel({
    inputs: [{ name: "i", type: "int64", shape: ["batch"] }],
    outputs: [{ name: "y", type: "float32", shape: ["batch"] }],
    initializers: [{ name: "table", type: "float32", dims: [10], values: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] }],
    nodes: [{ op: "Gather", inputs: ["table", "i"], outputs: ["y"], attributes: { axis: 0 } }],
  });
}

const svc = useService({ MODELD_MAX_QUEUE_PER_MODEL: "512" }, (t) => {
  for (const id of ["dense", "dense-alone", "held"]) writeModel(t.modelDir, `${id}.onnx`, denseModel());
  writeModel(t.modelDir, "wide.onnx", identityModel("float32", ["batch", "n"]));
  writeModel(t.modelDir, "lookup.onnx", lookupModel());
  writeModel(t.modelDir, "slow.onnx", matmulChainModel(512, 150));
  writeModel(t.modelDir, "fixed.onnx", identityModel("float32", [2, 3]));
});

const batching = { batching: { maxBatchSize: 64 } };
const load = async (id: string) => svc.api.waitJob((await svc.api.json("POST", `/api/v1/models/${id}/load?activate=false`)).body.id);
const row = (c: number, n = 16) => Array.from({ length: n }, (_, k) => ((c * 31 + k * 7) % 23) / 7 - 1.5);

describe("dynamic batching", () => {
  test("64 concurrent requests with distinct inputs share runs, and each answer is byte-identical to an unbatched run", async () => {
    expect((await svc.api.json("PATCH", "/api/v1/models/dense", { body: batching })).body.batching).toEqual({ maxBatchSize: 64, maxQueueDelayUs: 0 });
    expect((await load("dense")).outcome).toMatchObject({ batching: true });
    await load("dense-alone");
    const infer = await token({ role: "infer" });
    const body = (c: number) => ({ inputs: [{ name: "x", datatype: "FP32", shape: [1 + (c % 3), 16], data: Array.from({ length: 1 + (c % 3) }, (_, r) => row(c * 5 + r)).flat() }] });
    const batched = await Promise.all(Array.from({ length: 64 }, (_, c) => svc.api.json("POST", "/v2/models/dense/infer", { token: infer, body: body(c) })));
    const [stats] = (await svc.api.json("GET", "/v2/models/dense/stats", { token: infer })).body.model_stats;
    console.log(`batching: 64 requests in ${stats.execution_count} runs`);
    // Triton counts inferences in rows when a model batches.
    expect(stats.inference_count).toBe(Array.from({ length: 64 }, (_, c) => 1 + (c % 3)).reduce((a, b) => a + b));
    expect(stats.inference_stats.success.count).toBe(64);
    expect(stats.execution_count).toBeLessThan(64);
    expect(stats.batch_stats.reduce((n: number, b: any) => n + b.compute_infer.count, 0)).toBe(stats.execution_count);
    for (let c = 0; c < 64; c++) {
      const alone = await svc.api.json("POST", "/v2/models/dense-alone/infer", { token: infer, body: body(c) });
      expect({ c, status: batched[c]!.status }).toEqual({ c, status: 200 });
      expect({ c, outputs: batched[c]!.body.outputs }).toEqual({ c, outputs: alone.body.outputs });
    }
  });

  test("requests with other non-batch dimensions or other requested outputs are never merged into one run", async () => {
    await svc.api.json("PATCH", "/api/v1/models/wide", { body: batching });
    await load("wide");
    const sizes = [3, 5, 3, 7, 5, 3, 9, 7];
    const answers = await Promise.all(
      sizes.map((n, c) => svc.api.json("POST", "/v2/models/wide/infer", { body: { inputs: [{ name: "in", datatype: "FP32", shape: [1, n], data: row(c, n) }] } })),
    );
    answers.forEach((a, c) => expect({ c, shape: a.body.outputs[0].shape, data: a.body.outputs[0].data }).toEqual({ c, shape: [1, sizes[c]], data: row(c, sizes[c]).map((v) => Math.fround(v)) }));
    // dense has two outputs: asking for one or the other keeps them apart.
    const picks = await Promise.all(
      Array.from({ length: 16 }, (_, c) => svc.api.json("POST", "/v2/models/dense/infer", { body: { inputs: [{ name: "x", datatype: "FP32", shape: [1, 16], data: row(c) }], outputs: [{ name: c % 2 ? "y" : "z" }] } })),
    );
    picks.forEach((p, c) => expect({ c, names: p.body.outputs.map((o: any) => o.name) }).toEqual({ c, names: [c % 2 ? "y" : "z"] }));
  });

  test("a bad request in a batch fails alone, with ONNX Runtime's error; its neighbours are answered", async () => {
    await svc.api.json("PATCH", "/api/v1/models/lookup", { body: batching });
    await load("lookup");
    const answers = await Promise.all(
      Array.from({ length: 32 }, (_, c) => svc.api.json("POST", "/v2/models/lookup/infer", { body: { inputs: [{ name: "i", datatype: "INT64", shape: [1], data: [c === 13 ? 99 : c % 10] }] } })),
    );
    expect(answers.filter((a) => a.status !== 200).map((a) => a.status)).toEqual([400]);
    expect(answers[13]!.body.error).toMatch(/out of bounds|indices/i);
    answers.forEach((a, c) => c !== 13 && expect({ c, y: a.body.outputs[0].data }).toEqual({ c, y: [c % 10] }));
  });

  test("a queue delay holds a batch until it can make a preferred size, or its first request has waited the delay; a force unload ends the wait", async () => {
    const delayUs = 1_000_000;
    await svc.api.json("PATCH", "/api/v1/models/held", { body: { batching: { maxBatchSize: 8, maxQueueDelayUs: delayUs, preferredBatchSizes: [4] } } });
    expect((await load("held")).outcome).toMatchObject({ batching: true });
    const infer = (c: number) => svc.api.json("POST", "/v2/models/held/infer", { body: { inputs: [{ name: "x", datatype: "FP32", shape: [1, 16], data: row(c) }] } });
    const stats = async () => (await svc.api.json("GET", "/v2/models/held/stats")).body.model_stats[0];

    // One request waits; four more arrive later. The first four make the preferred size and leave
    // together, long before the delay; the fifth makes none, and leaves once it has waited the delay.
    let started = performance.now();
    const first = infer(0);
    await Bun.sleep(100);
    const later = [1, 2, 3, 4].map((c) => ({ sent: performance.now(), answer: infer(c) }));
    const four = await Promise.all([first, ...later.slice(0, 3).map((l) => l.answer)]);
    expect(performance.now() - started).toBeLessThan(delayUs / 1000 / 2);
    four.forEach((a, c) => expect({ c, status: a.status }).toEqual({ c, status: 200 }));
    expect((await later[3]!.answer).status).toBe(200);
    expect(performance.now() - later[3]!.sent).toBeGreaterThanOrEqual(delayUs / 1000);
    expect(await stats()).toMatchObject({ execution_count: 2, inference_count: 5 });

    // A force unload does not wait the delay out: the worker stops waiting, and its thread ends.
    const held = infer(5);
    await Bun.sleep(50);
    started = performance.now();
    const unload = await svc.api.json("POST", "/api/v1/models/held/unload?force=true");
    expect((await held).status).toBe(503);
    expect((await svc.api.waitJob(unload.body.id)).outcome?.summary).toBe("forced");
    expect(performance.now() - started).toBeLessThan(delayUs / 1000 / 2);
  });

  test("a model without a dynamic first dimension loads with batching off; a force unload mid-batch answers 503, never 5xx", async () => {
    await svc.api.json("PATCH", "/api/v1/models/fixed", { body: batching });
    expect((await load("fixed")).outcome).toMatchObject({ summary: "loaded on cpu", batching: false });
    const fixed = await svc.api.json("POST", "/v2/models/fixed/infer", { body: { inputs: [{ name: "in", datatype: "FP32", shape: [2, 3], data: [1, 2, 3, 4, 5, 6] }] } });
    expect(fixed.body.outputs[0].data).toEqual([1, 2, 3, 4, 5, 6]);

    await svc.api.json("PATCH", "/api/v1/models/slow", { body: batching });
    expect((await load("slow")).outcome).toMatchObject({ batching: true });
    const N = 512;
    const inflight = Array.from({ length: 48 }, () => svc.api.json("POST", "/v2/models/slow/infer", { body: { inputs: [{ name: "x", datatype: "FP32", shape: [1, N], data: new Array(N).fill(1) }] } }));
    await Bun.sleep(30);
    const unload = await svc.api.json("POST", "/api/v1/models/slow/unload?force=true");
    const statuses = (await Promise.all(inflight)).map((r) => r.status);
    expect(statuses.every((s) => s === 200 || s === 503)).toBe(true);
    expect((await svc.api.waitJob(unload.body.id)).outcome?.summary).toBe("forced");
    expect((await svc.api.json("PATCH", "/api/v1/models/slow", { body: { batching: { maxBatchSize: 0 } } })).status).toBe(400);
    const unreachable = await svc.api.json("PATCH", "/api/v1/models/slow", { body: { batching: { maxBatchSize: 8, maxQueueDelayUs: 100, preferredBatchSizes: [4, 16] } } });
    expect(unreachable.status).toBe(400);
    expect(JSON.stringify(unreachable.body.error.details)).toContain("preferredBatchSizes");
  });
});
