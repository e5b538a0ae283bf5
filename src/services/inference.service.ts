// One inference: validate against the model's metadata, run in the model's
// worker, shape the protocol response.
import type { Deps } from "../context";
import { AppError } from "../errors";
import { isFinished } from "../jobs/states";
import { enqueueJob, waitedJobError, waitForJob } from "./jobs.service";
import { getModel, getVersion, modelRef, newestVersion } from "./models.service";
import { RuntimeError, type ModelWorker } from "../runtime/model-worker";
import type { WireTensor } from "../runtime/protocol";
import { assertFits, sliceIn, type RegionSlice, type SystemSharedMemory } from "./shared-memory";
import {
  datatypeOf,
  decodeInputs,
  returnableOutputs,
  TensorError,
  toBinaryData,
  type RequestTensor,
  type ResponseTensor,
} from "../runtime/tensors";

export interface InferRequest {
  id?: string;
  parameters?: Record<string, unknown>;
  inputs: RequestTensor[];
  outputs?: { name: string; parameters?: Record<string, unknown> }[];
}

export interface InferResult {
  json: { model_name: string; model_version: string; id?: string; outputs: ResponseTensor[] };
  /** Raw output bytes, in output order, for outputs sent through the binary extension. */
  binary: Uint8Array[];
}

function runtimeToAppError(err: unknown, modelId: string): AppError {
  if (err instanceof RuntimeError) {
    switch (err.reason) {
      case "NOT_READY":
        return new AppError("MODEL_NOT_LOADED", `model ${modelId} is not loaded`);
      case "QUEUE_FULL":
        return new AppError("QUEUE_FULL", err.message, undefined, { "Retry-After": "1" });
      case "UNLOADING":
        return new AppError("MODEL_UNAVAILABLE", `model ${modelId} is unloading`, undefined, { "Retry-After": "1" });
      case "TERMINATED":
        return new AppError("MODEL_UNAVAILABLE", `model ${modelId} stopped serving: its worker ended`, undefined, { "Retry-After": "1" });
      case "RUN_FAILED":
        return new AppError("INFERENCE_FAILED", err.message);
    }
  }
  if (err instanceof AppError) return err;
  throw err;
}

const wantsBinary = (p: Record<string, unknown> | undefined, key: string): boolean | undefined =>
  p && typeof p[key] === "boolean" ? (p[key] as boolean) : undefined;

/** Why nothing answers: an unknown model or version is 404 (thrown by the registry), a known one that is not serving is "not loaded". */
function notServing(modelId: string, version: string | undefined, d: Pick<Deps, "models">): AppError {
  if (version === undefined) getModel(modelId, d);
  else getVersion(modelId, version, d);
  return new AppError("MODEL_NOT_LOADED", `${modelRef(modelId, version)} is not loaded`);
}

/** The session that answers: the routed one, if it serves the requested version. */
export function servingSession(modelId: string, version: string | undefined, d: Pick<Deps, "models" | "runtime">): ModelWorker {
  // The hot path asks only the runtime; the registry is read only to explain a refusal.
  const session = d.runtime.get(modelId);
  if (!session?.info || session.phase === "closed" || (version !== undefined && session.version !== version)) throw notServing(modelId, version, d);
  return session;
}

type InferDeps = Pick<Deps, "db" | "models" | "jobs" | "runtime" | "lifecycle" | "notifier" | "config" | "wake" | "stats" | "shm">;

const nsSince = (t: number) => Math.round((performance.now() - t) * 1e6);

/**
 * MODELD_LOAD_ON_DEMAND: a request for a registered model with nothing serving
 * queues its load (or joins the one queued) and waits for it, up to
 * MODELD_ON_DEMAND_WAIT_MS. A failed load answers at once with its error.
 */
async function loadOnDemand(modelId: string, version: string | undefined, caller: string, d: InferDeps): Promise<ModelWorker> {
  const target = version === undefined ? newestVersion(modelId, d) : getVersion(modelId, version, d);
  const queued = d.jobs.latestUnfinished(modelId);
  const job =
    queued?.kind === "load" && (version === undefined || queued.version === version)
      ? queued
      : enqueueJob({ kind: "load", modelId, version: target.version, requestedBy: caller, activate: false, reason: { kind: "on-demand" } }, d).job;
  const done = await waitForJob(job.id, d.config.memory.onDemandWaitMs / 1000, d);
  if (done.state === "completed") return servingSession(modelId, version, d);
  if (isFinished(done.state)) throw waitedJobError(done, "MODEL_LOAD_FAILED", done.error?.message ?? `the load of ${modelId} was ${done.state}`);
  throw new AppError("MODEL_UNAVAILABLE", `model ${modelId} is still loading on demand (job ${job.id}); retry`, undefined, { "Retry-After": "1" });
}

/** Runs one request on the session serving `version` (or the model's serving version when absent). */
export async function infer(modelId: string, version: string | undefined, req: InferRequest, d: InferDeps, caller = "anonymous"): Promise<InferResult> {
  const started = performance.now();
  let worker: ModelWorker;
  try {
    worker = servingSession(modelId, version, d);
  } catch (err) {
    // On demand only when nothing of the model serves: a request for another version never swaps what serves.
    const idle = err instanceof AppError && err.code === "MODEL_NOT_LOADED" && !d.runtime.get(modelId);
    if (!idle || !d.config.memory.loadOnDemand) throw err;
    worker = await loadOnDemand(modelId, version, caller, d);
  }
  try {
    return await runOn(worker, modelId, req, started, d);
  } catch (err) {
    d.stats.failure(modelId, worker.version, nsSince(started));
    throw err;
  }
}

function decodeRequest(req: InferRequest, worker: ModelWorker, maxElements: number): { wire: WireTensor[]; requested?: string[] } {
  const { inputs: inputMeta, outputs: outputMeta } = worker.info!;
  let wire;
  try {
    wire = decodeInputs(req.inputs, inputMeta, maxElements);
  } catch (err) {
    if (err instanceof TensorError) throw new AppError("INVALID_TENSOR", err.message);
    throw err;
  }
  const classified = req.outputs?.find((o) => o.parameters?.classification !== undefined);
  if (classified) throw new AppError("INVALID_TENSOR", `output ${classified.name}: the classification extension (class_count) is not supported; request the raw output`);
  const requested = req.outputs?.map((o) => o.name);
  const unknown = requested?.filter((n) => !outputMeta.some((o) => o.name === n));
  if (unknown?.length) throw new AppError("INVALID_TENSOR", `unknown output ${unknown.join(", ")}; the model's outputs are ${outputMeta.map((o) => o.name).join(", ")}`);
  const twice = requested?.find((n, i) => requested.indexOf(n) !== i);
  if (twice !== undefined) throw new AppError("INVALID_TENSOR", `output ${twice} is asked for twice`);
  const notTensor = requested && outputMeta.find((o) => o.type === "non-tensor" && requested.includes(o.name));
  if (notTensor) {
    const returnable = returnableOutputs(outputMeta).map((o) => o.name).join(", ");
    throw new AppError("INVALID_TENSOR", `output ${notTensor.name} is a sequence or a map, which modeld cannot return (ONNX Runtime's Node binding returns tensors only); ask for ${returnable}`);
  }
  return { wire, requested };
}

/**
 * Inputs that name a shared memory region get its bytes, as binary inputs carry theirs.
 * Undefined when none does: the usual request pays no extra turn of the event loop.
 */
function readSharedInputs(req: InferRequest, shm: SystemSharedMemory, maxElements: number): Promise<void> | undefined {
  const reads: Promise<void>[] = [];
  for (const input of req.inputs) {
    const what = `input ${input.name}`;
    const slice = sliceIn(input.parameters, what);
    if (!slice) continue;
    if (input.data !== undefined || input.binary !== undefined) throw new AppError("INVALID_TENSOR", `${what}: give one of data, binary_data_size or shared_memory_region`);
    // Read into memory before the tensor is checked: bounded as a body is, by the largest tensor allowed.
    const most = maxElements * 8;
    if (slice.byteSize > most) throw new AppError("INVALID_TENSOR", `${what}: shared_memory_byte_size ${slice.byteSize} is more than the ${most} bytes of the largest tensor MODELD_MAX_TENSOR_ELEMENTS allows`);
    reads.push(shm.read(slice, what).then((bytes) => void (input.binary = bytes)));
  }
  return reads.length ? Promise.all(reads).then(() => {}) : undefined;
}

/** The outputs to write to shared memory, each region checked before the model runs. */
function sharedOutputs(req: InferRequest, shm: SystemSharedMemory): Map<string, RegionSlice> | undefined {
  let shared: Map<string, RegionSlice> | undefined;
  for (const o of req.outputs ?? []) {
    const what = `output ${o.name}`;
    const slice = sliceIn(o.parameters, what);
    if (!slice) continue;
    if (o.parameters?.binary_data === true) throw new AppError("INVALID_TENSOR", `${what}: ask for binary_data or shared_memory_region, not both`);
    shm.check(slice, what);
    (shared ??= new Map()).set(o.name, slice);
  }
  return shared;
}

async function runOn(worker: ModelWorker, modelId: string, req: InferRequest, started: number, d: InferDeps): Promise<InferResult> {
  const decoded = performance.now();
  const reading = readSharedInputs(req, d.shm, d.config.runtime.maxTensorElements);
  if (reading) await reading;
  const shared = sharedOutputs(req, d.shm);
  const { wire, requested } = decodeRequest(req, worker, d.config.runtime.maxTensorElements);
  const decodeNs = nsSince(decoded);
  const sent = performance.now();
  let outcome;
  try {
    outcome = await worker.run(wire, requested);
  } catch (err) {
    throw runtimeToAppError(err, modelId);
  }
  const roundTripNs = nsSince(sent);
  const shaped = performance.now();
  const { result, writes } = shapeResult(worker, modelId, req, requested, outcome.outputs, shared);
  if (writes.length) await Promise.all(writes.map(({ slice, bytes, name }) => d.shm.write(slice, bytes, `output ${name}`)));
  const { timing } = outcome;
  d.stats.success(modelId, worker.version, {
    totalNs: nsSince(started),
    // Waiting for the thread and for the runs ahead of it: the round trip less the execution's own work.
    queueNs: Math.max(0, roundTripNs - timing.inputNs - timing.inferNs - timing.outputNs),
    inputNs: decodeNs + timing.inputNs,
    inferNs: timing.inferNs,
    outputNs: timing.outputNs + nsSince(shaped),
    rows: worker.info!.batching ? (wire[0]?.dims[0] ?? 1) : 1,
    execution: timing.first ? timing : undefined,
  });
  return result;
}

type SharedWrite = { name: string; slice: RegionSlice; bytes: Uint8Array };

function shapeResult(
  worker: ModelWorker,
  modelId: string,
  req: InferRequest,
  requested: string[] | undefined,
  results: WireTensor[],
  shared: Map<string, RegionSlice> | undefined,
): { result: InferResult; writes: SharedWrite[] } {
  const outputMeta = worker.info!.outputs;
  const writes: SharedWrite[] = [];
  const allBinary = wantsBinary(req.parameters, "binary_data_output") ?? false;
  const order = requested ?? outputMeta.map((o) => o.name);
  const binary: Uint8Array[] = [];
  const outputs: ResponseTensor[] = [];
  // A plain loop: flatMap costs more than shaping a small model's whole response.
  for (const name of order) {
    const t = results.find((r) => r.name === name);
    if (!t) continue;
    const slice = shared?.get(name);
    if (slice) {
      // As Triton answers it: the output's place, and no data. Every output is checked
      // before any is written, so a refused request writes nothing.
      const bytes = toBinaryData(t);
      assertFits(slice, bytes.byteLength, `output ${name}`);
      writes.push({ name, slice, bytes });
      const parameters = { shared_memory_region: slice.region, shared_memory_offset: slice.offset, shared_memory_byte_size: bytes.byteLength };
      outputs.push({ name, datatype: datatypeOf(t.type)!, shape: t.dims, parameters });
      continue;
    }
    const perOutput = req.outputs ? wantsBinary(req.outputs.find((o) => o.name === name)?.parameters, "binary_data") : undefined;
    if (perOutput ?? allBinary) {
      const bytes = toBinaryData(t);
      binary.push(bytes);
      outputs.push({ name, datatype: datatypeOf(t.type)!, shape: t.dims, parameters: { binary_data_size: bytes.byteLength } });
    } else outputs.push({ name, datatype: datatypeOf(t.type)!, shape: t.dims, values: t });
  }
  return { result: { json: { model_name: modelId, model_version: worker.version, ...(req.id !== undefined ? { id: req.id } : {}), outputs }, binary }, writes };
}
