// Triton's model configuration and statistics extensions, in the exact JSON
// its clients parse (perf_analyzer's model parser and client backend,
// tritonclient's http client): integers as JSON integers, versions as strings
// in statistics, and, when max_batch_size > 0, dims without the batch dimension.
import type { Deps } from "../context";
import type { VersionRecord } from "../db/models.repo";
import { AppError } from "../errors";
import { withDefaults } from "../model-settings";
import { canBatch } from "../runtime/batching";
import type { ModelWorker } from "../runtime/model-worker";
import type { TensorInfo } from "../runtime/protocol";
import { isFinished } from "../jobs/states";
import { datatypeOf, protocolTensorInfo, returnableOutputs } from "../runtime/tensors";
import { servingSession } from "./inference.service";
import { enqueueJob, waitedJobError, waitForJob } from "./jobs.service";
import { resolveModelPath } from "../lifecycle/model-files";
import { currentVersion, getModel, getVersion, modelRef, newestVersion, scanModelDir } from "./models.service";
import type { Duration, VersionStats } from "./stats.service";

type ReadDeps = Pick<Deps, "models" | "runtime" | "stats">;

export interface VersionInfo {
  version: VersionRecord;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  /** The session serving this version, when one does. */
  live?: ModelWorker;
}

/** A version's inputs and outputs: what its session reported, live or recorded at its last load. */
export function versionInfo(name: string, version: string | undefined, d: Pick<Deps, "models" | "runtime">): VersionInfo {
  const model = getModel(name, d);
  const v = version === undefined ? currentVersion(model, d.models.versions(name)) : getVersion(name, version, d);
  const session = d.runtime.get(name);
  const live = session?.info && v && session.version === String(v.version) ? session : undefined;
  const info = live?.info ?? (v?.inputs && v.outputs ? { inputs: v.inputs, outputs: v.outputs } : undefined);
  if (!v || !info) throw new AppError("MODEL_NOT_LOADED", `${modelRef(name, version)} has not been loaded yet, so its inputs are unknown`);
  return { version: v, inputs: info.inputs, outputs: info.outputs, live };
}

/** Triton's data_type names: TYPE_ plus the protocol datatype, with BYTES as STRING. */
function tritonType(t: TensorInfo): string {
  const dt = datatypeOf(t.type) ?? t.type.toUpperCase();
  return `TYPE_${dt === "BYTES" ? "STRING" : dt}`;
}

export function modelConfig(name: string, version: string | undefined, d: ReadDeps & Pick<Deps, "availableProviders">) {
  const info = versionInfo(name, version, d);
  const settings = withDefaults(getModel(name, d).settings);
  // The live session says how it merges requests (settings changed since take effect at the next load);
  // otherwise, how it would at its next load.
  const batching = info.live ? info.live.info!.batching : settings.batching !== null && canBatch(info.inputs, info.outputs) ? settings.batching : undefined;
  const maxBatchSize = batching?.maxBatchSize ?? 0;
  const dims = (t: TensorInfo) => (batching ? t.shape.slice(1) : t.shape);
  const gpu = (info.live?.info?.providers ?? settings.providers ?? d.availableProviders).includes("cuda");
  const s = settings.session;
  // Named as Triton's onnxruntime backend names its session parameters.
  const parameters: Record<string, { string_value: string }> = {};
  if (s.intraOpThreads !== undefined) parameters.intra_op_thread_count = { string_value: String(s.intraOpThreads) };
  if (s.interOpThreads !== undefined) parameters.inter_op_thread_count = { string_value: String(s.interOpThreads) };
  if (s.executionMode !== undefined) parameters.execution_mode = { string_value: s.executionMode === "parallel" ? "1" : "0" };
  return {
    name,
    platform: "onnxruntime_onnx",
    backend: "onnxruntime",
    version_policy: { specific: { versions: [info.version.version] } },
    max_batch_size: maxBatchSize,
    input: info.inputs.map((t) => ({ name: t.name, data_type: tritonType(t), format: "FORMAT_NONE", dims: dims(t), is_shape_tensor: false, allow_ragged_batch: false, optional: false })),
    output: returnableOutputs(info.outputs).map((t) => ({ name: t.name, data_type: tritonType(t), dims: dims(t), label_filename: "", is_shape_tensor: false })),
    ...(batching
      ? {
          dynamic_batching: {
            preferred_batch_size: batching.preferredBatchSizes ?? [],
            max_queue_delay_microseconds: batching.maxQueueDelayUs,
            preserve_ordering: false,
            priority_levels: 0,
            default_priority_level: 0,
          },
        }
      : {}),
    instance_group: [{ name: `${name}_0`, kind: gpu ? "KIND_GPU" : "KIND_CPU", count: 1, gpus: gpu ? [0] : [], passive: false, host_policy: "" }],
    default_model_filename: "model.onnx",
    parameters,
  };
}

const duration = (x: Duration) => ({ count: x.count, ns: x.ns });

function versionStats(name: string, version: string, s: VersionStats) {
  return {
    name,
    version,
    last_inference: s.lastInference,
    inference_count: s.inferenceCount,
    execution_count: s.executionCount,
    inference_stats: {
      success: duration(s.success),
      fail: duration(s.fail),
      queue: duration(s.queue),
      compute_input: duration(s.computeInput),
      compute_infer: duration(s.computeInfer),
      compute_output: duration(s.computeOutput),
      // No response cache: both stay zero, and are present because perf_analyzer reads them.
      cache_hit: duration({ count: 0, ns: 0 }),
      cache_miss: duration({ count: 0, ns: 0 }),
    },
    batch_stats: [...s.batches.values()]
      .sort((a, b) => a.batchSize - b.batchSize)
      .map((b) => ({ batch_size: b.batchSize, compute_input: duration(b.computeInput), compute_infer: duration(b.computeInfer), compute_output: duration(b.computeOutput) })),
  };
}

/**
 * One entry per registered version (as the repository index lists them), of
 * every model, of one model, or of one version; zeros where nothing ran.
 */
export function modelStats(name: string | undefined, version: string | undefined, d: ReadDeps) {
  const versions =
    name === undefined ? d.models.versionStates().filter((v) => version === undefined || String(v.version) === version) : version === undefined ? d.models.versions(getModel(name, d).id) : [getVersion(name, version, d)];
  return {
    model_stats: versions.map((v) => versionStats(v.modelId, String(v.version), d.stats.get(v.modelId, String(v.version)))),
  };
}

/** What the server metadata lists: system shared memory only where an operator turned it on. */
export function serverExtensions(d: Pick<Deps, "shm">): string[] {
  return ["binary_tensor_data", "model_repository", "model_configuration", "statistics", ...(d.shm.allowed ? ["system_shared_memory"] : [])];
}

/** The protocol's model metadata: a version's inputs and outputs, with protocol datatypes and -1 for dynamic dimensions. */
export function modelMetadata(name: string, version: string | undefined, d: Pick<Deps, "models" | "runtime">) {
  const info = versionInfo(name, version, d);
  return {
    name,
    versions: d.models.versions(name).map((x) => String(x.version)),
    platform: "onnxruntime_onnx" as const,
    inputs: info.inputs.map(protocolTensorInfo),
    // Only what a request can get back: the protocol has no datatype for a sequence or a map.
    outputs: returnableOutputs(info.outputs).map(protocolTensorInfo),
  };
}

/** Whether the version (unversioned: the serving version) serves; throws for an unknown model or version. */
export function modelReady(name: string, version: string | undefined, d: Pick<Deps, "models" | "runtime">): boolean {
  try {
    return servingSession(name, version, d).phase === "ready";
  } catch (err) {
    if (err instanceof AppError && err.code === "MODEL_NOT_LOADED") return false;
    throw err;
  }
}

const REPOSITORY_STATE = { loaded: "READY", loading: "LOADING", unloading: "UNLOADING", unloaded: "UNAVAILABLE", failed: "UNAVAILABLE" } as const;

/** One entry per registered version, as Triton lists a model's versions; `onlyReady` keeps the serving ones. */
export function repositoryIndex(onlyReady: boolean, d: Pick<Deps, "models">) {
  // One read for the whole registry: a read per model held the HTTP thread ~12 ms for 500 models.
  const entries = d.models.allVersions().map((v) => ({
    name: v.modelId,
    version: String(v.version),
    state: REPOSITORY_STATE[v.state],
    reason: v.lastError?.message ?? (v.state === "unloaded" ? "unloaded" : ""),
  }));
  return onlyReady ? entries.filter((e) => e.state === "READY") : entries;
}

/**
 * tritonclient sends `{"parameters":{"unload_dependents":false}}` on unload and
 * `{"parameters":{"config": ...}}` to override a configuration on load. modeld
 * takes a model's settings from PATCH /api/v1/models/{id} instead, so an
 * override is refused rather than silently ignored.
 */
export function checkRepositoryParameters(kind: "load" | "unload", parameters: Record<string, unknown> | undefined): void {
  for (const key of Object.keys(parameters ?? {})) {
    if (key === "unload_dependents" && kind === "unload") continue;
    if (key === "config") {
      throw new AppError("VALIDATION_ERROR", "a config override on load is not supported: set the model's batching, session and warmup with PATCH /api/v1/models/{id}, then load");
    }
    if (key.startsWith("file:")) throw new AppError("VALIDATION_ERROR", "uploading model files with a load is not supported: put them in the model dir and rescan, or POST /api/v1/models/{id}/versions");
    throw new AppError("VALIDATION_ERROR", `unknown ${kind} parameter ${key}${kind === "unload" ? "; only unload_dependents is accepted" : "; none are accepted"}`);
  }
}

/**
 * Triton's load takes the newest version its repository holds, so removing a bad
 * version's folder and loading is how its users roll back. A version whose file is
 * gone stays registered (a volume briefly unmounted must not lose the registry) and
 * is passed over here; when none is left, the newest registered one is the target,
 * and its job names the missing file.
 */
async function newestInModelDir(name: string, d: Deps): Promise<VersionRecord> {
  for (const v of d.models.versions(name).reverse()) {
    if (await resolveModelPath(d.config.modelDir, v.path).then(() => true, () => false)) return v;
  }
  return newestVersion(name, d);
}

/**
 * Triton's repository calls answer when the work is done, not with a job: the
 * load (newest version) or unload runs through the same job queue, and this
 * resolves when its job completes, or throws JOB_FAILED with the job's error.
 */
export async function runRepositoryAction(kind: "load" | "unload", name: string, parameters: Record<string, unknown> | undefined, caller: string, d: Deps): Promise<void> {
  checkRepositoryParameters(kind, parameters);
  // Triton's load reads the model's folder in the repository again: a version folder (or a
  // whole model) copied in since the last scan is what a Triton user's load_model is for.
  if (kind === "load") {
    const { skipped } = await scanModelDir(d, name);
    if (!d.models.get(name) && skipped.length) throw new AppError("MODEL_NOT_FOUND", `no model ${name}: ${skipped.map((f) => `${f.path}: ${f.reason}`).join("; ")}`);
  }
  const model = getModel(name, d);
  if (kind === "unload" && model.state === "unloaded" && !d.jobs.latestUnfinished(name)) return;
  const version = kind === "load" ? (await newestInModelDir(name, d)).version : undefined;
  // A serving version's file overwritten in place is what Triton's load reloads, too.
  const { job } = enqueueJob({ kind, modelId: name, version, requestedBy: caller, reread: kind === "load" }, d);
  const bound = (kind === "load" ? d.config.jobs.loadTimeoutMs : d.config.jobs.unloadTimeoutMs) / 1000 + 5;
  const done = await waitForJob(job.id, bound, d);
  if (done.state === "completed") return;
  const why = isFinished(done.state) ? (done.error?.message ?? done.state) : `job ${done.id} is still ${done.state}`;
  throw waitedJobError(done, "JOB_FAILED", `failed to ${kind} ${name}: ${why}`);
}
