// Polls SQLite for pending jobs and runs them: one at a time per model, many
// models at once. enqueue → wake() makes pickup immediate; the poll catches
// jobs written by other processes and anything a wake missed.
import type { Deps } from "../context";
import { setTimeout as sleep } from "node:timers/promises";
import { executeJob } from "./execute";

const PRUNE_EVERY_MS = 10 * 60_000;

export interface JobLoop {
  wake(): void;
  /** Stops claiming; resolves when running jobs have ended or `timeoutMs` passed. */
  stop(timeoutMs: number): Promise<void>;
  /** Resolves when no job is running (for tests and shutdown). */
  idle(): Promise<void>;
  readonly running: number;
}

export function startJobLoop(d: Omit<Deps, "wake">): JobLoop {
  const running = new Set<Promise<void>>();
  // Models with a job executing here, whatever its row says: a cancelled job
  // may still be unwinding, and the next job of its model must wait for it.
  const busy = new Map<string, number>();
  let stopped = false;
  let scheduled = false;

  const tick = () => {
    scheduled = false;
    while (!stopped && running.size < d.config.jobs.concurrency) {
      let job;
      try {
        job = d.jobs.claimNext([...busy.keys()]);
      } catch (err) {
        // A busy database must not kill the loop; the next poll retries.
        d.log.error("claiming a job failed", { error: String(err) });
        return;
      }
      if (!job) return;
      const model = job.modelId;
      busy.set(model, (busy.get(model) ?? 0) + 1);
      const p: Promise<void> = executeJob(job, d)
        .catch((err) => d.log.error("job crashed", { jobId: job.id, error: String(err) }))
        .finally(() => {
          running.delete(p);
          const left = (busy.get(model) ?? 1) - 1;
          if (left) busy.set(model, left);
          else busy.delete(model);
          d.notifier.notify(job.id);
          wake();
        });
      running.add(p);
    }
  };

  const wake = () => {
    if (stopped || scheduled) return;
    scheduled = true;
    queueMicrotask(tick);
  };

  const prune = () => {
    const cutoff = new Date(Date.now() - d.config.jobs.retentionHours * 3600_000).toISOString();
    try {
      const n = d.jobs.pruneFinishedBefore(cutoff);
      if (n) d.log.info("pruned finished jobs", { count: n, olderThan: cutoff });
    } catch (err) {
      d.log.warn("pruning jobs failed", { error: String(err) });
    }
  };

  const timer = setInterval(wake, d.config.jobs.pollMs);
  const pruneTimer = setInterval(prune, PRUNE_EVERY_MS);
  prune();
  wake();

  return {
    wake,
    get running() {
      return running.size;
    },
    async idle() {
      while (running.size) await Promise.allSettled([...running]);
    },
    async stop(timeoutMs) {
      stopped = true;
      clearInterval(timer);
      clearInterval(pruneTimer);
      await Promise.race([Promise.allSettled([...running]), sleep(timeoutMs)]);
    },
  };
}
