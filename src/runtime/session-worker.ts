// Runs inside a Worker: owns exactly one ONNX Runtime session. Session creation
// and run() block their thread, which is why they live here and not on the
// HTTP thread.
//
// This worker is never terminate()d from outside: terminating a thread while
// onnxruntime-node is inside native code aborts the whole process (an uncaught
// Napi::Error). It stops itself instead, on "exit", once no native call is
// running: pending runs finish or are skipped, the session is released, and
// the thread closes.
import { readFileSync } from "node:fs";
import * as ort from "onnxruntime-node";
import { canBatch, mergeInputs, queuedRows, rowsOf, splitOutputs, takeBatch, type BatchingSpec } from "./batching";
import { externalDataLocations, unsafeLocation } from "./external-data";
import { BellWaiter, doorbellOf } from "./doorbell";
import { recentLeast } from "./recent-least";
import { demoModelPath } from "../platform/assets";
import { parentPort } from "../platform/threads";
import { keepFloat16AsUint16 } from "./ort-float16";
import { elementCount, numericLayout, returnableOutputs } from "./tensors";
import { MAX_ITEMS_PER_MESSAGE, ownedBuffer, transferList, type ExecutionTiming, type FromWorker, type LoadRequest, type RunItem, type RunResult, type TensorInfo, type ToWorker, type WarmupSpec, type WireTensor } from "./protocol";

const parent = parentPort();
keepFloat16AsUint16(ort);

let session: ort.InferenceSession | undefined;
/** What a run that names no outputs fetches: every output, unless some cannot be returned (returnableOutputs). */
let defaultFetches: string[] | undefined;
let bell: BellWaiter | undefined;
let loading: Promise<void> | undefined;
const running = new Set<Promise<void>>();
/** Fault injection (see LoadRequest.crashAfterRuns): runs received so far, and the bound. */
let runsReceived = 0;
let crashAfterRuns: number | undefined;
const stopping = () => bell?.stopped() ?? false;

const post = (msg: FromWorker, transfer: ArrayBuffer[] = []) => parent.postMessage(msg, transfer);

// Results finished in the same turn go back together. onnxruntime-node runs each
// session.run in its own setImmediate, so a flush scheduled the same way follows
// every run that was already queued. At most MAX_ITEMS_PER_MESSAGE leave in one
// message, so the HTTP thread answers the first requests while later runs execute.
// Once every run received is answered, nothing is left to gather, and the results
// leave at once rather than a turn later (at c=1: p90 614 -> 475 us, p99 3.4 -> 3.0 ms).
let outbox: RunResult[] = [];
/** Runs received and not answered yet, skipped ones aside. */
let unanswered = 0;
function flushResults(): void {
  if (outbox.length === 0) return;
  const items = outbox;
  outbox = [];
  post({ type: "results", items }, items.flatMap((r) => ("outputs" in r ? transferList(r.outputs) : [])));
  // Counted once posted, so a thread that sees the count move finds the message queued.
  bell?.answered();
}
function reply(result: RunResult): void {
  unanswered--;
  const waiting = outbox.push(result);
  if (unanswered === 0 || waiting >= MAX_ITEMS_PER_MESSAGE) flushResults();
  else if (waiting === 1) setImmediate(flushResults);
  if (unanswered === 0) linger();
}

// Staying awake between requests (MODELD_SPIN_US). A thread that sleeps
// between requests must be woken for the next one, and on a virtual machine's
// idle core that costs more than a tiny model's run: through wrk at concurrency 1
// (bench/floor.bench.ts), Hono + one worker answered in 161 µs p50 with the
// worker sleeping and 86 µs with it spinning 500 µs after each answer.
// Spinning burns the core, so the worker spins only when it pays: after a
// message of one run (requests one at a time; under load messages carry several,
// and a worker spinning whenever idle took the cores the HTTP thread and the
// client need: -13% at c=64), and only when one of the last few waits for work
// fit the window (sparse traffic, whose spins would all run out, stops spinning
// after four of them).
let spinMs = 0;
let lastMessageRuns = 0;
/** performance.now() when the last run was answered with nothing else to do; -1 while busy. */
let idleSince = -1;
/** How long the thread waited, idle, for each of the last few runs messages; zeros at first, so a new session spins. */
const idleWaits = recentLeast(4, 0);

function linger(): void {
  idleSince = performance.now();
  if (spinMs > 0 && lastMessageRuns === 1 && idleWaits.least() <= spinMs) bell?.spinForPosted(runsMessages, idleSince + spinMs);
}

function noteArrival(runs: number): void {
  if (idleSince >= 0) idleWaits.note(performance.now() - idleSince);
  idleSince = -1;
  lastMessageRuns = runs;
}

const nsSince = (t: number) => Math.round((performance.now() - t) * 1e6);

function describe(meta: readonly ort.InferenceSession.ValueMetadata[]): TensorInfo[] {
  return meta.map((m) => {
    if (!m.isTensor) return { name: m.name, type: "non-tensor", shape: [] };
    const dims = m.shape.map((d) => (typeof d === "number" && d >= 0 ? d : -1));
    const names = m.shape.map((d) => (typeof d === "string" ? d : null));
    return { name: m.name, type: m.type, shape: dims, ...(names.some((n) => n) ? { dimNames: names } : {}) };
  });
}

/** ONNX element types that ONNX Runtime can run but its Node binding cannot hand to or from JavaScript. */
const UNPASSABLE_TYPES: Record<string, string> = {
  "14": "complex64",
  "15": "complex128",
  "16": "bfloat16",
  "17": "float8e4m3fn",
  "18": "float8e4m3fnuz",
  "19": "float8e5m2",
  "20": "float8e5m2fnuz",
  "23": "float4e2m1",
};

/** onnxruntime-node names such a type by its number alone ("Unsupported data type: 16"). */
function loadErrorMessage(message: string): string {
  const number = /^Unsupported data type: (\d+)$/.exec(message)?.[1];
  if (number === undefined) return message;
  const type = UNPASSABLE_TYPES[number] ?? `ONNX element type ${number}`;
  return `an input or output of the model is ${type}, which ONNX Runtime's Node binding cannot pass to or from JavaScript; export the model with another type at its inputs and outputs (a Cast inside the graph keeps ${type} computation)`;
}

async function load(req: LoadRequest): Promise<void> {
  if (stopping()) return;
  try {
    // Unparseable files go on to ONNX Runtime, whose message says what is wrong with them.
    const unsafe = externalDataLocations(req.path).map((l) => unsafeLocation(req.path, l)).find((r) => r);
    if (unsafe) return post({ type: "load-error", code: "UNSAFE_EXTERNAL_DATA", message: `refused external data: ${unsafe}` });
  } catch {}
  try {
    session = await ort.InferenceSession.create(req.path, { ...req.sessionOptions, executionProviders: req.executionProviders });
  } catch (err) {
    return post({ type: "load-error", code: "LOAD_FAILED", message: loadErrorMessage((err as Error).message) });
  }
  const inputs = describe(session.inputMetadata);
  const outputs = describe(session.outputMetadata);
  const returnable = returnableOutputs(outputs);
  if (returnable.length === 0) {
    return post({ type: "load-error", code: "LOAD_FAILED", message: `none of the model's outputs (${outputs.map((o) => o.name).join(", ")}) is a tensor, and ONNX Runtime's Node binding returns tensors only; export it with tensor outputs (for sklearn-onnx: zipmap=False)` });
  }
  defaultFetches = returnable.length < outputs.length ? returnable.map((o) => o.name) : undefined;
  if (req.warmup && req.warmup.runs > 0) {
    post({ type: "warming" });
    try {
      await warmUp(session, inputs, req.warmup);
    } catch (err) {
      return post({ type: "load-error", code: "WARMUP_FAILED", message: `warmup failed: ${(err as Error).message}` });
    }
  }
  batching = req.batching && canBatch(inputs, outputs) ? req.batching : undefined;
  post({ type: "loaded", inputs, outputs, providers: req.executionProviders, batching: batching !== undefined });
}

/** A zero (or empty-string) tensor for one input; dynamic dimensions take the given shape, else 1. */
function zeroTensor(info: TensorInfo, { shapes, maxElements = Infinity }: WarmupSpec): ort.Tensor {
  if (info.type === "non-tensor") throw new Error(`input ${info.name} is not a tensor, so it cannot be warmed up`);
  const given = shapes?.[info.name];
  if (given && (given.length !== info.shape.length || given.some((d, i) => info.shape[i]! >= 0 && info.shape[i] !== d))) {
    throw new Error(`warmup shape [${given.join(",")}] for input ${info.name} does not fit the model's [${info.shape.join(",")}]`);
  }
  const dims = given ?? info.shape.map((d) => (d < 0 ? 1 : d));
  const size = elementCount(dims, maxElements, `input ${info.name}'s warmup tensor`);
  if (info.type === "string") return new ort.Tensor("string", new Array<string>(size).fill(""), dims);
  const layout = numericLayout(info.type);
  if (!layout) throw new Error(`input ${info.name} has type ${info.type}, which modeld cannot feed`);
  return toOrtTensor({ name: info.name, type: info.type as WireTensor["type"], dims, data: new ArrayBuffer(size * layout.size) });
}

async function warmUp(s: ort.InferenceSession, inputs: TensorInfo[], spec: WarmupSpec): Promise<void> {
  for (let i = 0; i < spec.runs && !stopping(); i++) {
    // Fresh tensors each run: ONNX Runtime may keep references to its feeds.
    const feeds = Object.fromEntries(inputs.map((info) => [info.name, zeroTensor(info, spec)]));
    await (defaultFetches ? s.run(feeds, defaultFetches) : s.run(feeds));
  }
}

function toOrtTensor(t: WireTensor): ort.Tensor {
  if (Array.isArray(t.data)) return new ort.Tensor("string", t.data, t.dims);
  const { View } = numericLayout(t.type)!;
  return new ort.Tensor(t.type as "float32", new View(t.data) as Float32Array, t.dims);
}

function fromOrtTensor(name: string, t: ort.Tensor): WireTensor {
  const dims = [...t.dims];
  if (t.type === "string") return { name, type: "string", dims, data: t.data as string[] };
  return { name, type: t.type as WireTensor["type"], dims, data: ownedBuffer(t.data as Uint8Array) };
}

type Timed = { outputs: WireTensor[]; timing: Omit<ExecutionTiming, "batchSize" | "first"> };

// The runs of one message are queued in ONNX Runtime's setImmediate together and
// execute one after another on this thread, each continuation following its own run.
// A run's compute time starts when it was queued or when the run before it ended,
// whichever is later; the wait behind the others is queue time, as in Triton's stats.
let lastRunEnded = 0;

async function execute(inputs: WireTensor[], outputs?: string[]): Promise<Timed> {
  let t = performance.now();
  const feeds = Object.fromEntries(inputs.map((x) => [x.name, toOrtTensor(x)]));
  const inputNs = nsSince(t);
  t = performance.now();
  let inferNs = 0;
  // Failed runs end too: the next run's time must not include theirs.
  const fetches = outputs?.length ? outputs : defaultFetches;
  const result = await (fetches ? session!.run(feeds, fetches) : session!.run(feeds)).finally(() => {
    inferNs = nsSince(Math.max(t, lastRunEnded));
    lastRunEnded = performance.now();
  });
  t = performance.now();
  const wire = Object.entries(result).map(([name, x]) => fromOrtTensor(name, x));
  return { outputs: wire, timing: { inputNs, inferNs, outputNs: nsSince(t) } };
}

async function run(item: RunItem): Promise<void> {
  const { id } = item;
  // The caller was already answered when stop was set; skip the work.
  if (stopping()) return;
  if (!session) return reply({ id, error: "model is not loaded" });
  try {
    const { outputs, timing } = await execute(item.inputs, item.outputs);
    reply({ id, outputs, timing: { ...timing, batchSize: batching ? rowsOf(item) : 1, first: true } });
  } catch (err) {
    reply({ id, error: (err as Error).message });
  }
}

// Batching: requests wait in `queue` while the session runs, and leave in merged runs.
let batching: BatchingSpec | undefined;
const queue: RunItem[] = [];
/** When each queued request reached this thread (performance.now()): the queue delay counts from there. */
const arrivedAt = new WeakMap<RunItem, number>();
let pumping: Promise<void> | undefined;
/** Runs messages handled, counted as the HTTP thread counts the ones it posts (doorbell.ts). */
let runsMessages = 0;
/** Resolves a batch's wait for a message that was posted and is still on its way. */
let delivered: (() => void) | undefined;
const wakeGather = () => {
  const wake = delivered;
  delivered = undefined;
  wake?.();
};

/**
 * The rows a batch may leave with now, as Triton's dynamic batcher decides: the
 * largest preferred size the waiting rows can make, or maxBatchSize once they
 * fill it. Undefined: worth waiting for more.
 */
function readyRows(spec: BatchingSpec, rows: number): number | undefined {
  if (rows >= spec.maxBatchSize) return spec.maxBatchSize;
  const makeable = spec.preferredBatchSizes?.filter((p) => p <= rows) ?? [];
  return makeable.length ? Math.max(...makeable) : undefined;
}

async function runBatch(batch: RunItem[]): Promise<void> {
  if (stopping()) return;
  if (batch.length === 1) return run(batch[0]!);
  let parts: WireTensor[][] | undefined;
  let timing: Timed["timing"] | undefined;
  try {
    let t = performance.now();
    const merged = mergeInputs(batch);
    const mergeNs = nsSince(t);
    const done = await execute(merged, batch[0]!.outputs);
    t = performance.now();
    parts = splitOutputs(batch, done.outputs);
    timing = { inputNs: mergeNs + done.timing.inputNs, inferNs: done.timing.inferNs, outputNs: done.timing.outputNs + nsSince(t) };
  } catch {
    // One bad request must not fail its neighbours: run each alone, so only the
    // requests that really fail get ONNX Runtime's error.
  }
  // Outputs whose rows cannot be told apart (or a failed merged run): each request runs alone.
  if (!parts || !timing) return void (await Promise.all(batch.map(run)));
  const batchSize = batch.reduce((n, i) => n + rowsOf(i), 0);
  batch.forEach((item, k) => reply({ id: item.id, outputs: parts[k]!, timing: { ...timing, batchSize, first: k === 0 } }));
}

/**
 * Holds the batch at the front of the queue until it can leave with a
 * preferred size or maxBatchSize, or its first request has waited
 * maxQueueDelayUs (then it leaves with what there is). Returns the rows it may
 * take. The thread sleeps between messages; each one posted wakes it to count again.
 */
async function gather(spec: BatchingSpec): Promise<number> {
  const deadline = arrivedAt.get(queue[0]!)! + spec.maxQueueDelayUs / 1000;
  for (;;) {
    const ready = readyRows(spec, queuedRows(queue));
    if (ready !== undefined) return ready;
    // The thread is about to block: answers still waiting for the end of this turn leave first.
    flushResults();
    if (bell!.awaitPosted(runsMessages, deadline) !== "posted") return spec.maxBatchSize;
    await new Promise<void>((r) => (delivered = r));
  }
}

async function pump(spec: BatchingSpec): Promise<void> {
  while (queue.length && !stopping()) {
    // A lone request is never held back unless the model asks for a delay.
    const rows = spec.maxQueueDelayUs > 0 ? await gather(spec) : spec.maxBatchSize;
    await runBatch(takeBatch(queue, rows));
  }
  pumping = undefined;
}

async function exit(): Promise<void> {
  bell?.requestStop();
  await loading;
  await Promise.allSettled([...running]);
  await session?.release();
  session = undefined;
  // Ends this worker thread only, not the process.
  parent.exit();
}

/**
 * ONNX Runtime's first session in a process sets up ~26 MiB of process-wide
 * state (measured here; later sessions add ~0.3 MiB). Creating one from the
 * shipped demo model now keeps that out of the first real session's measured
 * footprint.
 */
async function warmProcess(): Promise<void> {
  try {
    const s = await ort.InferenceSession.create(readFileSync(demoModelPath()));
    await s.release();
  } catch {} // a failure here only blurs the first measurement
}

// Say so once ONNX Runtime is imported and warm, so a spare thread's start is over before anyone measures memory.
void warmProcess().then(() => post({ type: "ready" }));

parent.onMessage((data) => {
  const msg = data as ToWorker;
  if (msg.type === "load") {
    bell = new BellWaiter(doorbellOf(msg.doorbell));
    spinMs = msg.spinUs / 1000;
    crashAfterRuns = msg.crashAfterRuns;
    loading = load(msg);
  } else if (msg.type === "runs") {
    runsReceived += msg.items.length;
    if (crashAfterRuns !== undefined && runsReceived > crashAfterRuns) throw new Error(`fault injected: run ${runsReceived} of a worker that crashes after ${crashAfterRuns}`);
    unanswered += msg.items.length;
    runsMessages = (runsMessages + 1) | 0;
    noteArrival(msg.items.length);
    if (batching) {
      const now = performance.now();
      for (const item of msg.items) arrivedAt.set(item, now);
      queue.push(...msg.items);
      wakeGather();
      if (!pumping) {
        const p: Promise<void> = (pumping = pump(batching)).finally(() => running.delete(p));
        running.add(p);
      }
      return;
    }
    for (const item of msg.items) {
      const p = run(item).finally(() => running.delete(p));
      running.add(p);
    }
  } else if (msg.type === "exit") {
    wakeGather();
    void exit();
  }
});
