// What a claimed job does. Every outcome is written back to SQLite, so the
// API can always report the model's state and the job's result.
import type { Deps } from "../context";
import { AppError } from "../errors";
import { RuntimeError } from "../runtime/model-worker";
import { resolveModelPath } from "../services/model-files";
import { chooseProviders } from "../runtime/providers";
import { sha256File } from "../runtime/sha256";
import { JobError, type Job } from "./states";

type ExecDeps = Pick<Deps, "config" | "db" | "models" | "jobs" | "settings" | "runtime" | "availableProviders" | "log">;

async function locateFile(modelDir: string, path: string): Promise<string> {
  try {
    return (await resolveModelPath(modelDir, path)).abs;
  } catch (err) {
    throw new JobError("MODEL_FILE_MISSING", err instanceof AppError ? err.message : String(err));
  }
}

async function verifyChecksum(path: string, expected: string): Promise<void> {
  let actual: string;
  try {
    actual = await sha256File(path);
  } catch (err) {
    throw new JobError("MODEL_FILE_MISSING", (err as Error).message);
  }
  if (actual !== expected) {
    throw new JobError("CHECKSUM_MISMATCH", `file sha256 is ${actual}, registered as ${expected}; re-register the model if the change is intended`);
  }
}

const stillRunning = (job: Job, d: ExecDeps) => d.jobs.get(job.id)?.state === "running";

async function runLoad(job: Job, d: ExecDeps): Promise<string> {
  const model = d.models.get(job.modelId);
  if (!model) throw new JobError("MODEL_NOT_FOUND", `model ${job.modelId} was deleted`);
  const existing = d.runtime.get(model.id);
  if (existing?.phase === "ready") {
    if (job.activate) d.settings.setActiveModel(model.id);
    return "already-loaded";
  }
  d.models.setState(model.id, "loading");
  d.jobs.setPhase(job.id, "loading");
  try {
    const path = await locateFile(d.config.modelDir, model.path);
    const providers = chooseProviders(model.providers ?? d.config.runtime.executionProviders, d.availableProviders, d.config.runtime.allowCpuFallback);
    for (const w of providers.warnings) d.log.warn(w, { jobId: job.id, modelId: model.id });
    // A cancel (or force unload) that arrived before the worker existed had nothing to stop.
    if (!stillRunning(job, d)) throw new JobError("CANCELLED", "cancelled before the session was created");
    // The checksum is computed while ONNX Runtime creates the session, on another
    // core; the session serves nothing until both have finished.
    const checksum = d.config.runtime.verifyChecksum ? verifyChecksum(path, model.sha256) : Promise.resolve();
    checksum.catch(() => d.runtime.stop(model.id, new JobError("CHECKSUM_MISMATCH", "checksum check failed")));
    const [info] = await Promise.all([
      d.runtime.load(model.id, { path, executionProviders: providers.chosen }, d.config.jobs.loadTimeoutMs),
      checksum,
    ]);
    if (!stillRunning(job, d)) {
      d.runtime.stop(model.id);
      throw new JobError("CANCELLED", "cancelled while the session was being created");
    }
    d.db.tx(() => {
      d.models.setMetadata(model.id, info.inputs, info.outputs);
      d.models.setState(model.id, "loaded");
      if (job.activate) d.settings.setActiveModel(model.id);
    });
    return `loaded on ${info.providers.join(",")}`;
  } catch (err) {
    const e = asJobError(err);
    // A cancelled load leaves the model as it was before: simply not loaded.
    d.models.setState(model.id, e.code === "CANCELLED" ? "unloaded" : "failed", e.code === "CANCELLED" ? null : e);
    throw e;
  }
}

async function runUnload(job: Job, d: ExecDeps): Promise<string> {
  const model = d.models.get(job.modelId);
  if (model) d.models.setState(model.id, "unloading");
  d.jobs.setPhase(job.id, job.force ? "stopping" : "draining");
  const outcome = await d.runtime.unload(job.modelId, {
    force: job.force || (d.jobs.get(job.id)?.force ?? false),
    timeoutMs: d.config.jobs.unloadTimeoutMs,
  });
  if (model) d.models.setState(model.id, "unloaded");
  d.settings.clearActiveModelIf(job.modelId);
  return outcome === "absent" ? "not-loaded" : outcome;
}

export function asJobError(err: unknown): JobError {
  if (err instanceof JobError) return err;
  if (err instanceof RuntimeError && err.reason === "TERMINATED") return new JobError("WORKER_CRASHED", err.message);
  return new JobError("LOAD_FAILED", err instanceof Error ? err.message : String(err));
}

/** Runs one claimed job to its end; never throws. */
export async function executeJob(job: Job, d: ExecDeps): Promise<void> {
  const log = d.log.child({ jobId: job.id, modelId: job.modelId, kind: job.kind });
  const started = performance.now();
  try {
    const phase = job.kind === "load" ? await runLoad(job, d) : await runUnload(job, d);
    d.db.tx(() => {
      d.jobs.setPhase(job.id, phase);
      d.jobs.complete(job.id);
    });
    log.info("job completed", { phase, ms: Math.round(performance.now() - started) });
  } catch (err) {
    const e = asJobError(err);
    d.jobs.fail(job.id, { code: e.code, message: e.message });
    log.warn("job failed", { code: e.code, error: e.message, ms: Math.round(performance.now() - started) });
  }
}
