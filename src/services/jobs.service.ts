import { monotonicMs } from "../clock";
import type { Deps } from "../context";
import type { JobFilter } from "../db/jobs.repo";
import { AppError } from "../errors";
import { isFinished, type Job, type JobKind, type JobReason } from "../jobs/states";

type JobDeps = Pick<Deps, "db" | "jobs" | "models" | "runtime" | "lifecycle" | "notifier" | "config" | "wake">;

export function getJob(id: string, d: Pick<Deps, "jobs">): Job {
  const job = d.jobs.get(id);
  if (!job) throw new AppError("JOB_NOT_FOUND", `no job ${id}`);
  return job;
}

/**
 * Long-poll: returns as soon as the job finishes, or after waitSeconds with its current
 * state, or, once `givenUp()` turns true, at the next re-read (within the poll period).
 */
export async function waitForJob(id: string, waitSeconds: number, d: Pick<Deps, "jobs" | "notifier" | "config">, givenUp: () => boolean = () => false): Promise<Job> {
  const deadline = monotonicMs() + waitSeconds * 1000;
  let job = getJob(id, d);
  while (!isFinished(job.state) && monotonicMs() < deadline && !givenUp()) {
    // Re-read at least every poll period: another process may finish the job.
    await d.notifier.waitFor(id, Math.min(deadline - monotonicMs(), d.config.jobs.pollMs));
    job = getJob(id, d);
  }
  return job;
}

/**
 * What a caller that waited for a job is told when it did not complete: `code`
 * with the job's reason, unless the job met a full disk, which stays 507.
 */
export function waitedJobError(job: Job, code: "MODEL_LOAD_FAILED" | "JOB_FAILED", message: string): AppError {
  return new AppError(job.error?.code === "STORAGE_FULL" ? "STORAGE_FULL" : code, message);
}

export function listJobs(filter: JobFilter, d: Pick<Deps, "jobs">): Job[] {
  return d.jobs.list(filter);
}

export interface EnqueueInput {
  kind: JobKind;
  modelId: string;
  /** The version a load targets, resolved by the caller. */
  version?: number;
  requestedBy: string;
  force?: boolean;
  activate?: boolean;
  /** Triton's repository load: the version's file as it is now (LoadRequest.reread). */
  reread?: boolean;
  idempotency?: { key: string; requestHash: string };
  /** Set for jobs no person asked for directly (idle expiry, on-demand loads). */
  reason?: JobReason;
}

/** Work to do once the transaction that decided it has committed. */
type Effects = (() => void)[];

/** The job an Idempotency-Key already stands for, or a 422 when it stood for another request. */
function priorForKey(input: EnqueueInput, d: JobDeps): Job | undefined {
  if (!input.idempotency) return undefined;
  const prior = d.jobs.byIdempotencyKey(input.requestedBy, input.idempotency.key);
  if (!prior) return undefined;
  if (prior.requestHash !== input.idempotency.requestHash) {
    throw new AppError("IDEMPOTENCY_KEY_REUSED", "this Idempotency-Key was used with a different request");
  }
  const { requestHash: _, ...job } = prior;
  return job;
}

/**
 * A force unload does not wait for a load that may be stuck: the running load
 * is cancelled, and its session is stopped once the cancel has committed.
 * Returns the model's newest unfinished job after that.
 */
function escalateForce(input: EnqueueInput, latest: Job | undefined, d: JobDeps, effects: Effects): Job | undefined {
  if (input.kind !== "unload" || !input.force || latest?.kind !== "load" || latest.state !== "running") return latest;
  if (!d.jobs.cancel(latest.id, "running")) return latest; // past its switch: the unload queues behind it
  effects.push(() => {
    d.lifecycle.cancelCreating(input.modelId);
    d.notifier.notify(latest.id);
  });
  return d.jobs.latestUnfinished(input.modelId);
}

/** A request the model's newest unfinished job already covers: the same load (same version, same reading of its file) or another unload. */
function coalesce(input: EnqueueInput, latest: Job | undefined, d: JobDeps, effects: Effects): Job | undefined {
  if (!latest || latest.kind !== input.kind) return undefined;
  if (input.kind === "load" && (latest.version !== String(input.version) || latest.reread !== (input.reread ?? false))) return undefined;
  if (input.kind === "unload" && input.force && !latest.force) {
    d.jobs.markForce(latest.id);
    // The graceful unload may be waiting on stuck work: stop the model's sessions now.
    if (latest.state === "running") effects.push(() => d.lifecycle.stopAll(input.modelId));
  }
  return d.jobs.get(latest.id)!;
}

/** An unload needs something to unload: a loaded or loading model, or a load queued before it. */
function requireSomethingToUnload(input: EnqueueInput, latest: Job | undefined, d: JobDeps): void {
  if (input.kind !== "unload" || latest) return;
  const model = d.models.get(input.modelId);
  if (!model || (model.state !== "loaded" && model.state !== "loading" && !d.runtime.get(input.modelId))) {
    throw new AppError("MODEL_NOT_LOADED", `model ${input.modelId} is not loaded`);
  }
}

/** The queue is bounded: past MODELD_MAX_PENDING_JOBS a new job is refused. */
function admit(d: JobDeps): void {
  if (d.jobs.countUnfinished() >= d.config.jobs.maxPending) {
    throw new AppError("TOO_MANY_JOBS", `${d.config.jobs.maxPending} jobs are already waiting`, undefined, { "Retry-After": "5" });
  }
}

/**
 * Writes the job row (committed before the caller answers 202) or returns the
 * job that already covers the request. Stopping sessions and waking waiters
 * happen only after the commit: a refused request changes nothing.
 */
export function enqueueJob(input: EnqueueInput, d: JobDeps): { job: Job; created: boolean } {
  const effects: Effects = [];
  const result = d.db.tx(() => {
    const prior = priorForKey(input, d);
    if (prior) return { job: prior, created: false };
    const latest = escalateForce(input, d.jobs.latestUnfinished(input.modelId), d, effects);
    const covering = coalesce(input, latest, d, effects);
    if (covering) return { job: covering, created: false };
    requireSomethingToUnload(input, latest, d);
    admit(d);
    const job = d.jobs.insert({
      kind: input.kind,
      modelId: input.modelId,
      version: input.version,
      requestedBy: input.requestedBy,
      force: input.force,
      activate: input.activate,
      reread: input.reread,
      idempotencyKey: input.idempotency?.key,
      requestHash: input.idempotency?.requestHash,
      reason: input.reason,
    });
    return { job, created: true };
  });
  for (const effect of effects) effect();
  if (result.created) d.wake();
  return result;
}

/**
 * Pending: cancelled at once. Running load: cancelled at once and its new
 * session stopped, unless it already switched (then it is past the point of no
 * return and finishes). Finished: 409.
 */
export function cancelJob(id: string, d: JobDeps): Job {
  const job = getJob(id, d);
  if (isFinished(job.state)) throw new AppError("JOB_FINISHED", `job ${id} is already ${job.state}`);
  if (job.state === "pending") {
    if (!d.jobs.cancel(id, "pending")) return cancelJob(id, d); // claimed meanwhile: try as running
  } else if (job.kind === "load") {
    if (!d.jobs.cancel(id, "running")) {
      const now = getJob(id, d);
      if (isFinished(now.state)) throw new AppError("JOB_FINISHED", `job ${id} is already ${now.state}`);
      throw new AppError("JOB_FINISHED", `job ${id} has already switched the model to its new session; it finishes within MODELD_UNLOAD_TIMEOUT_MS`);
    }
    d.lifecycle.cancelCreating(job.modelId);
  } else {
    throw new AppError("JOB_FINISHED", `job ${id} is a running unload, which cannot be cancelled; it finishes within MODELD_UNLOAD_TIMEOUT_MS`);
  }
  d.notifier.notify(id);
  return getJob(id, d);
}
