// The thread of bench/bare-worker.ts: one ONNX Runtime session, one run per message.
// With a doorbell (BENCH_SPIN_US set), it stays awake that long after answering
// with nothing else received, as modeld's session worker does after a lone run.
import * as ort from "onnxruntime-node";
import { BellWaiter, doorbellOf } from "../src/runtime/doorbell";

declare const self: Worker;
const session = await ort.InferenceSession.create(process.env.BENCH_MODEL!);
let bell: BellWaiter | undefined;
let spinMs = 0;
let received = 0;
let answered = 0;
self.onmessage = async (e: MessageEvent<{ id: number; x: number[] } | { doorbell: SharedArrayBuffer; spinUs: number }>) => {
  if ("doorbell" in e.data) {
    bell = new BellWaiter(doorbellOf(e.data.doorbell));
    spinMs = e.data.spinUs / 1000;
    return;
  }
  received = (received + 1) | 0;
  const out = await session.run({ x: new ort.Tensor("float32", new Float32Array(e.data.x), [1, e.data.x.length]) });
  self.postMessage({ id: e.data.id, y: Array.from(out.y!.data as Float32Array) });
  if (++answered === received && bell) bell.spinForPosted(received, performance.now() + spinMs);
};
self.postMessage("ready");
