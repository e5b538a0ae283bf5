// What a claimed job does: hands its model to the lifecycle owner and records
// the steps it reports. Lifecycle errors become job errors here, once.
import type { Deps } from "../context";
import { IllegalTransition, LifecycleError } from "../lifecycle/errors";
import type { Eviction, LifecycleControl } from "../lifecycle/phases";
import type { JobSteps } from "./loop";
import { JobError, type Job, type JobOutcome } from "./states";

type ExecDeps = Pick<Deps, "jobs" | "lifecycle" | "notifier" | "audit" | "config" | "log">;

export function asJobError(err: unknown): JobError {
  if (err instanceof JobError) return err;
  if (err instanceof LifecycleError) return new JobError(err.code, err.message);
  // A guard that missed or a transition the table forbids is a bug: say so, never disguise it.
  if (err instanceof IllegalTransition) return new JobError("INTERNAL", err.message);
  return new JobError("LOAD_FAILED", err instanceof Error ? err.message : String(err));
}

function controlFor(job: Job, d: ExecDeps): LifecycleControl {
  const ctl: LifecycleControl = {
    phase: (p) => d.jobs.setPhase(job.id, p),
    cancelled: () => d.jobs.get(job.id)?.state !== "running",
    forced: () => job.force || (d.jobs.get(job.id)?.force ?? false),
  };
  // Only a load makes room, and an eviction evicts nothing further.
  if (job.kind === "load") ctl.evict = (modelId, forWhat) => startEviction(modelId, forWhat, d);
  return ctl;
}

/**
 * An eviction is an unload job like any other, by "system" with a reason. It is
 * written as running, so no other job of that model is claimed while it runs,
 * and it runs inside the load that needs the room.
 */
function startEviction(modelId: string, forWhat: string, d: ExecDeps): Eviction | undefined {
  const job = d.jobs.insertRunning({ kind: "unload", modelId, requestedBy: "system", reason: { kind: "evicted", for: forWhat } });
  if (!job) return undefined;
  const log = d.log.child({ jobId: job.id, modelId, kind: "unload" });
  const end = (outcome: string) => {
    d.audit.recordSystem(`unload ${modelId}: evicted for ${forWhat}`, modelId, outcome, job.id);
    d.notifier.notify(job.id);
  };
  return {
    ctl: controlFor(job, d),
    finish(outcome) {
      d.jobs.complete(job.id, outcome);
      log.info("evicted", { for: forWhat, outcome });
      end("ok");
    },
    fail(err) {
      const e = asJobError(err);
      d.jobs.fail(job.id, { code: e.code, message: e.message });
      log.warn("eviction failed", { for: forWhat, code: e.code, error: e.message });
      end(e.code);
    },
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
