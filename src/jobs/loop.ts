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
  let stopped = false;
  let scheduled = false;

  const tick = () => {
    scheduled = false;
    while (!stopped && running.size < d.config.jobs.concurrency) {
      let job;
      try {
        job = d.jobs.claimNext();
      } catch (err) {
        // A busy database must not kill the loop; the next poll retries.
        d.log.error("claiming a job failed", { error: String(err) });
        return;
      }
      if (!job) return;
      const p: Promise<void> = executeJob(job, d)
        .catch((err) => d.log.error("job crashed", { jobId: job.id, error: String(err) }))
        .finally(() => {
          running.delete(p);
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
