// What a claimed job does: hands its model to the lifecycle owner and records
// the steps it reports. Lifecycle errors become job errors here, once.
import type { Deps } from "../context";
import { unlessStorageFails, writeWhenRoom } from "../db/storage";
import { isStorageFull } from "../errors";
import { IllegalTransition, LifecycleError } from "../lifecycle/errors";
import type { Eviction, LifecycleControl } from "../lifecycle/phases";
import type { JobSteps } from "./loop";
import { JobError, type Job, type JobOutcome } from "./states";

type ExecDeps = Pick<Deps, "db" | "jobs" | "lifecycle" | "notifier" | "audit" | "config" | "log">;

export function asJobError(err: unknown): JobError {
  if (err instanceof JobError) return err;
  if (err instanceof LifecycleError) return new JobError(err.code, err.message);
  if (isStorageFull(err)) return new JobError("STORAGE_FULL", err.message);
  // A guard that missed or a transition the table forbids is a bug: say so, never disguise it.
  if (err instanceof IllegalTransition) return new JobError("INTERNAL", err.message);
  return new JobError("LOAD_FAILED", err instanceof Error ? err.message : String(err));
}

function controlFor(job: Job, d: ExecDeps): LifecycleControl {
  const ctl: LifecycleControl = {
    // A step is a progress report: a full or failed disk must not stop the job (nor a release waiting on it) over one.
    phase: (p) => void unlessStorageFails(() => d.jobs.setPhase(job.id, p), (err) => d.log.warn("a job's step was not recorded", { jobId: job.id, phase: p, error: err.message })),
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
  /**
   * The eviction's end and its audit row. The load that needs the room does not wait
   * for a full disk: the eviction's row stays running, which keeps other jobs off its
   * model, until this is written.
   */
  const end = (how: JobEnd, result: string, report: () => void) => {
    const write = () =>
      d.db.tx(() => {
        endJob(job, how, d);
        d.audit.recordSystem(`unload ${modelId}: evicted for ${forWhat}`, modelId, result, job.id);
      });
    writeWhenRoom(write, { log, what: "recording an eviction's end", retryMs: d.config.jobs.pollMs }).then(
      (written) => {
        if (!written) return;
        report();
        d.notifier.notify(job.id);
      },
      (err) => log.error("recording an eviction's end failed", { error: String(err) }),
    );
  };
  return {
    ctl: controlFor(job, d),
    finish(outcome) {
      end({ outcome }, "ok", () => log.info("evicted", { for: forWhat, outcome }));
    },
    fail(err) {
      const e = asJobError(err);
      end({ error: e }, e.code, () => log.warn("eviction failed", { for: forWhat, code: e.code, error: e.message }));
    },
  };
}

/** Runs one claimed job to its outcome; throws a JobError when it fails. */
export async function executeJob(job: Job, d: ExecDeps): Promise<JobOutcome> {
  const ctl = controlFor(job, d);
  try {
    // A worker crash recorded while the disk was full may still be waiting to be written.
    d.lifecycle.settle(job.modelId, null);
    if (job.kind === "load") {
      return await d.lifecycle.load({ modelId: job.modelId, version: job.version === null ? null : Number(job.version), activate: job.activate, reread: job.reread }, ctl);
    }
    return await d.lifecycle.unload(job.modelId, ctl);
  } catch (err) {
    if (err instanceof IllegalTransition) d.log.error("illegal lifecycle transition", { jobId: job.id, error: err.message });
    throw asJobError(err);
  }
}

type JobEnd = { outcome: JobOutcome } | { error: JobError };

/**
 * A job's end, and its model's rows made to say what the runtime has, in one
 * transaction: if one of the job's own writes met a full disk, this is what
 * finishes its work once the disk has room.
 */
function endJob(job: Job, end: JobEnd, d: ExecDeps): void {
  d.db.tx(() => {
    if ("outcome" in end) {
      d.jobs.complete(job.id, end.outcome);
      d.lifecycle.settle(job.modelId, null);
    } else {
      const { code, message } = end.error;
      d.jobs.fail(job.id, { code, message });
      d.lifecycle.settle(job.modelId, code === "CANCELLED" ? null : { code, message });
    }
  });
}

/** The job loop's steps, over SQLite and the lifecycle owner. */
export function jobSteps(d: ExecDeps): JobSteps {
  return {
    claim: (busy) => d.jobs.claimNext(busy),
    execute: (job) => executeJob(job, d),
    complete: (job, outcome) => endJob(job, { outcome }, d),
    fail: (job, err) => endJob(job, { error: err }, d),
    notify: (jobId) => d.notifier.notify(jobId),
    prune: () => {
      const cutoff = new Date(Date.now() - d.config.jobs.retentionHours * 3600_000).toISOString();
      const n = d.jobs.pruneFinishedBefore(cutoff);
      if (n) d.log.info("pruned finished jobs", { count: n, olderThan: cutoff });
    },
  };
}
