import type { Deps } from "../context";
import type { JobFilter } from "../db/jobs.repo";
import { AppError } from "../errors";
import { isFinished, type Job, type JobKind } from "../jobs/states";
import { RuntimeError } from "../runtime/model-worker";

type JobDeps = Pick<Deps, "db" | "jobs" | "models" | "runtime" | "notifier" | "config" | "wake">;

export function getJob(id: string, d: Pick<Deps, "jobs">): Job {
  const job = d.jobs.get(id);
  if (!job) throw new AppError("JOB_NOT_FOUND", `no job ${id}`);
  return job;
}

/** Long-poll: returns as soon as the job finishes, or after waitSeconds with its current state. */
export async function waitForJob(id: string, waitSeconds: number, d: Pick<Deps, "jobs" | "notifier" | "config">): Promise<Job> {
  const deadline = Date.now() + waitSeconds * 1000;
  let job = getJob(id, d);
  while (!isFinished(job.state) && Date.now() < deadline) {
    // Re-read at least every poll period: another process may finish the job.
    await d.notifier.waitFor(id, Math.min(deadline - Date.now(), d.config.jobs.pollMs));
    job = getJob(id, d);
  }
  return job;
}

export function listJobs(filter: JobFilter, d: Pick<Deps, "jobs">): Job[] {
  return d.jobs.list(filter);
}

export interface EnqueueInput {
  kind: JobKind;
  modelId: string;
  requestedBy: string;
  force?: boolean;
  activate?: boolean;
  idempotency?: { key: string; requestHash: string };
}

/**
 * Writes the job row (committed before the caller answers 202) or returns the
 * job that already covers the request: a second load while one is queued or
 * running is the same job, and so is a repeated unload.
 */
export function enqueueJob(input: EnqueueInput, d: JobDeps): { job: Job; created: boolean } {
  const result = d.db.tx(() => {
    if (input.idempotency) {
      const prior = d.jobs.byIdempotencyKey(input.requestedBy, input.idempotency.key);
      if (prior) {
        if (prior.requestHash !== input.idempotency.requestHash) {
          throw new AppError("IDEMPOTENCY_KEY_REUSED", "this Idempotency-Key was used with a different request");
        }
        const { requestHash: _, ...job } = prior;
        return { job, created: false };
      }
    }
    let latest = d.jobs.latestUnfinished(input.modelId);
    if (input.kind === "unload" && input.force && latest?.kind === "load" && latest.state === "running") {
      // Force unload does not wait for a load that may be stuck: end it now.
      d.jobs.cancel(latest.id, "running");
      d.runtime.stop(input.modelId);
      d.notifier.notify(latest.id);
      latest = undefined;
    }
    if (latest && latest.kind === input.kind) {
      if (input.kind === "unload" && input.force && !latest.force) {
        d.jobs.markForce(latest.id);
        // The graceful unload may be waiting on stuck work: stop the worker now.
        if (latest.state === "running") d.runtime.stop(input.modelId, new RuntimeError("UNLOADING", `model ${input.modelId} was force-unloaded`));
      }
      return { job: d.jobs.get(latest.id)!, created: false };
    }
    if (input.kind === "unload" && !latest) {
      const model = d.models.get(input.modelId);
      if (!model || (model.state !== "loaded" && model.state !== "loading" && !d.runtime.get(input.modelId))) {
        throw new AppError("MODEL_NOT_LOADED", `model ${input.modelId} is not loaded`);
      }
    }
    if (d.jobs.countUnfinished() >= d.config.jobs.maxPending) {
      throw new AppError("TOO_MANY_JOBS", `${d.config.jobs.maxPending} jobs are already waiting`, undefined, {
        "Retry-After": "5",
      });
    }
    const job = d.jobs.insert({
      kind: input.kind,
      modelId: input.modelId,
      requestedBy: input.requestedBy,
      force: input.force,
      activate: input.activate,
      idempotencyKey: input.idempotency?.key,
      requestHash: input.idempotency?.requestHash,
    });
    return { job, created: true };
  });
  if (result.created) d.wake();
  return result;
}

/** Pending: cancelled at once. Running load: cancelled at once, its worker told to stop. Finished: 409. */
export function cancelJob(id: string, d: JobDeps): Job {
  const job = getJob(id, d);
  if (isFinished(job.state)) throw new AppError("JOB_FINISHED", `job ${id} is already ${job.state}`);
  if (job.state === "pending") {
    if (!d.jobs.cancel(id, "pending")) return cancelJob(id, d); // claimed meanwhile: try as running
  } else if (job.kind === "load") {
    if (d.jobs.cancel(id, "running")) d.runtime.stop(job.modelId);
  } else {
    throw new AppError("JOB_FINISHED", `job ${id} is a running unload, which cannot be cancelled; it finishes within MODELD_UNLOAD_TIMEOUT_MS`);
  }
  d.notifier.notify(id);
  return getJob(id, d);
}
