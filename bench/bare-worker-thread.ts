// The thread of bench/bare-worker.ts: one ONNX Runtime session, one run per message.
import * as ort from "onnxruntime-node";

declare const self: Worker;
const session = await ort.InferenceSession.create(process.env.BENCH_MODEL!);
self.onmessage = async (e: MessageEvent<{ id: number; x: number[] }>) => {
  const out = await session.run({ x: new ort.Tensor("float32", new Float32Array(e.data.x), [1, e.data.x.length]) });
  self.postMessage({ id: e.data.id, y: Array.from(out.y!.data as Float32Array) });
};
self.postMessage("ready");
