// Runs inside a Worker: owns exactly one ONNX Runtime session. Session creation
// and run() block their thread, which is why they live here and not on the
// HTTP thread.
//
// This worker is never terminate()d from outside: terminating a thread while
// onnxruntime-node is inside native code aborts the whole process (an uncaught
// Napi::Error). It stops itself instead, on "exit", once no native call is
// running: pending runs finish or are skipped, the session is released, and
// the thread closes.
import * as ort from "onnxruntime-node";
import type { TensorInfo } from "../db/models.repo";
import { externalDataLocations, unsafeLocation } from "./external-data";
import { keepFloat16AsUint16 } from "./ort-float16";
import { transferList, type FromWorker, type LoadRequest, type RunResult, type ToWorker, type WireTensor } from "./protocol";

declare const self: Worker;
keepFloat16AsUint16(ort);

let session: ort.InferenceSession | undefined;
let stop: Int32Array | undefined;
let loading: Promise<void> | undefined;
const running = new Set<Promise<void>>();
const stopping = () => (stop ? Atomics.load(stop, 0) !== 0 : false);

const post = (msg: FromWorker, transfer: ArrayBuffer[] = []) => self.postMessage(msg, transfer);

// Results finished in the same turn go back in one message. onnxruntime-node runs
// each session.run in its own setImmediate, so a flush scheduled the same way
// follows every run that was already queued.
let outbox: RunResult[] = [];
function reply(result: RunResult): void {
  if (outbox.push(result) === 1) {
    setImmediate(() => {
      const items = outbox;
      outbox = [];
      post({ type: "results", items }, items.flatMap((r) => ("outputs" in r ? transferList(r.outputs) : [])));
    });
  }
}

function describe(meta: readonly ort.InferenceSession.ValueMetadata[]): TensorInfo[] {
  return meta.map((m) => {
    if (!m.isTensor) return { name: m.name, type: "non-tensor", shape: [] };
    const dims = m.shape.map((d) => (typeof d === "number" && d >= 0 ? d : -1));
    const names = m.shape.map((d) => (typeof d === "string" ? d : null));
    return { name: m.name, type: m.type, shape: dims, ...(names.some((n) => n) ? { dimNames: names } : {}) };
  });
}

async function load(req: LoadRequest): Promise<void> {
  if (stopping()) return;
  try {
    // Unparseable files go on to ONNX Runtime, whose message says what is wrong with them.
    const unsafe = externalDataLocations(req.path).map((l) => unsafeLocation(req.path, l)).find((r) => r);
    if (unsafe) return post({ type: "load-error", code: "UNSAFE_EXTERNAL_DATA", message: `refused external data: ${unsafe}` });
  } catch {}
  try {
    session = await ort.InferenceSession.create(req.path, { executionProviders: req.executionProviders });
  } catch (err) {
    return post({ type: "load-error", code: "LOAD_FAILED", message: (err as Error).message });
  }
  post({
    type: "loaded",
    inputs: describe(session.inputMetadata),
    outputs: describe(session.outputMetadata),
    providers: req.executionProviders,
  });
}

function toOrtTensor(t: WireTensor): ort.Tensor {
  if (Array.isArray(t.data)) return new ort.Tensor("string", t.data, t.dims);
  const views = {
    float32: Float32Array, float64: Float64Array, float16: Uint16Array,
    int8: Int8Array, int16: Int16Array, int32: Int32Array, int64: BigInt64Array,
    uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array, uint64: BigUint64Array, bool: Uint8Array,
  } as const;
  const View = views[t.type as keyof typeof views];
  return new ort.Tensor(t.type as "float32", new View(t.data) as Float32Array, t.dims);
}

function fromOrtTensor(name: string, t: ort.Tensor): WireTensor {
  const dims = [...t.dims];
  if (t.type === "string") return { name, type: "string", dims, data: t.data as string[] };
  const view = t.data as Uint8Array;
  // Hand over the exact bytes; copy only when the view does not own its whole buffer.
  const owns = view.byteOffset === 0 && view.byteLength === view.buffer.byteLength;
  const data = owns ? (view.buffer as ArrayBuffer) : (view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength) as ArrayBuffer);
  return { name, type: t.type as WireTensor["type"], dims, data };
}

async function run(id: number, inputs: WireTensor[], outputs?: string[]): Promise<void> {
  // The caller was already answered when stop was set; skip the work.
  if (stopping()) return;
  if (!session) return reply({ id, error: "model is not loaded" });
  try {
    const feeds = Object.fromEntries(inputs.map((t) => [t.name, toOrtTensor(t)]));
    const result = outputs?.length ? await session.run(feeds, outputs) : await session.run(feeds);
    const wire = Object.entries(result).map(([name, t]) => fromOrtTensor(name, t));
    reply({ id, outputs: wire });
  } catch (err) {
    reply({ id, error: (err as Error).message });
  }
}

async function exit(): Promise<void> {
  if (stop) Atomics.store(stop, 0, 1);
  await loading;
  await Promise.allSettled([...running]);
  await session?.release();
  session = undefined;
  // Ends this worker thread only, not the process.
  process.exit(0);
}

self.onmessage = (event: MessageEvent<ToWorker>) => {
  const msg = event.data;
  if (msg.type === "load") {
    stop = new Int32Array(msg.stop);
    loading = load(msg);
  } else if (msg.type === "runs") {
    for (const item of msg.items) {
      const p = run(item.id, item.inputs, item.outputs).finally(() => running.delete(p));
      running.add(p);
    }
  } else if (msg.type === "exit") {
    void exit();
  }
};
