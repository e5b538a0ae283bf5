// What a claimed job does: hands its model to the lifecycle owner and records
// the steps it reports. Lifecycle errors become job errors here, once.
import type { Deps } from "../context";
import { IllegalTransition, LifecycleError } from "../lifecycle/errors";
import type { LifecycleControl } from "../lifecycle/phases";
import type { JobSteps } from "./loop";
import { JobError, type Job, type JobOutcome } from "./states";

type ExecDeps = Pick<Deps, "jobs" | "lifecycle" | "notifier" | "config" | "log">;

export function asJobError(err: unknown): JobError {
  if (err instanceof JobError) return err;
  if (err instanceof LifecycleError) return new JobError(err.code, err.message);
  // A guard that missed or a transition the table forbids is a bug: say so, never disguise it.
  if (err instanceof IllegalTransition) return new JobError("INTERNAL", err.message);
  return new JobError("LOAD_FAILED", err instanceof Error ? err.message : String(err));
}

function controlFor(job: Job, d: ExecDeps): LifecycleControl {
  return {
    phase: (p) => d.jobs.setPhase(job.id, p),
    cancelled: () => d.jobs.get(job.id)?.state !== "running",
    forced: () => job.force || (d.jobs.get(job.id)?.force ?? false),
  };
}

/** Runs one claimed job to its outcome; throws a JobError when it fails. */
export async function executeJob(job: Job, d: ExecDeps): Promise<JobOutcome> {
  const ctl = controlFor(job, d);
  try {
    if (job.kind === "load") {
      return await d.lifecycle.load({ modelId: job.modelId, version: job.version === null ? null : Number(job.version), activate: job.activate }, ctl);
    }
    return await d.lifecycle.unload(job.modelId, ctl);
  } catch (err) {
    if (err instanceof IllegalTransition) d.log.error("illegal lifecycle transition", { jobId: job.id, error: err.message });
    throw asJobError(err);
  }
}

/** The job loop's steps, over SQLite and the lifecycle owner. */
export function jobSteps(d: ExecDeps): JobSteps {
  return {
    claim: (busy) => d.jobs.claimNext(busy),
    execute: (job) => executeJob(job, d),
    complete: (job, outcome) => void d.jobs.complete(job.id, outcome),
    fail: (job, err) => void d.jobs.fail(job.id, { code: err.code, message: err.message }),
    notify: (jobId) => d.notifier.notify(jobId),
    prune: () => {
      const cutoff = new Date(Date.now() - d.config.jobs.retentionHours * 3600_000).toISOString();
      const n = d.jobs.pruneFinishedBefore(cutoff);
      if (n) d.log.info("pruned finished jobs", { count: n, olderThan: cutoff });
    },
  };
}
