// Claims pending jobs and runs them: one at a time per model, many models at
// once. enqueue → wake() makes pickup immediate; the poll catches jobs written
// by other processes and anything a wake missed. Everything it does to a job
// comes in as a step, so it can run over fakes as well as SQLite.
import { setTimeout as sleep } from "node:timers/promises";
import { writeWhenRoom } from "../db/storage";
import { repeatedFailure, type Logger } from "../log";
import { JobError, type Job, type JobOutcome } from "./states";

export interface JobSteps {
  /** Atomically takes the next runnable job, skipping models in `busyModels`. */
  claim(busyModels: string[]): Job | undefined;
  /** Runs the job; resolves with its outcome or throws a JobError. */
  execute(job: Job): Promise<JobOutcome>;
  complete(job: Job, outcome: JobOutcome): void;
  fail(job: Job, error: JobError): void;
  /** Wakes anyone waiting on the job; called after complete or fail. */
  notify(jobId: string): void;
  prune(): void;
}

export interface LoopOptions {
  concurrency: number;
  /** Also how often a job's end is tried again while the disk is full. */
  pollMs: number;
  pruneEveryMs?: number;
  log: Logger;
}

export interface JobLoop {
  wake(): void;
  /** Stops claiming; resolves when running jobs have ended or `timeoutMs` passed. */
  stop(timeoutMs: number): Promise<void>;
  /** Resolves when no job is running (for tests and shutdown). */
  idle(): Promise<void>;
  readonly running: number;
}

export function startJobLoop(steps: JobSteps, opts: LoopOptions): JobLoop {
  const running = new Set<Promise<void>>();
  // Models with a job executing here, whatever its row says: a cancelled job
  // may still be unwinding, and the next job of its model must wait for it.
  const busy = new Map<string, number>();
  let stopped = false;
  let scheduled = false;
  const claiming = repeatedFailure(opts.log, "claiming jobs");

  const finish = async (job: Job): Promise<void> => {
    const log = opts.log.child({ jobId: job.id, modelId: job.modelId, kind: job.kind });
    const started = performance.now();
    const ms = () => Math.round(performance.now() - started);
    let record: () => void;
    let report: () => void;
    try {
      const outcome = await steps.execute(job);
      record = () => steps.complete(job, outcome);
      report = () => log.info("job completed", { outcome, ms: ms() });
    } catch (err) {
      const e = err instanceof JobError ? err : new JobError("INTERNAL", String(err));
      record = () => steps.fail(job, e);
      report = () => log.warn("job failed", { code: e.code, error: e.message, ms: ms() });
    }
    // Until the end is written the job reads as running and its model stays busy here,
    // so no other job of the model starts from rows this one left half-changed.
    if (await writeWhenRoom(record, { log, what: "recording a job's end", stopped: () => stopped, retryMs: opts.pollMs })) report();
  };

  const tick = () => {
    scheduled = false;
    while (!stopped && running.size < opts.concurrency) {
      let job;
      try {
        job = steps.claim([...busy.keys()]);
      } catch (err) {
        // A busy or failed database must not kill the loop; the next poll retries.
        claiming.failed(err);
        return;
      }
      claiming.succeeded();
      if (!job) return;
      const model = job.modelId;
      busy.set(model, (busy.get(model) ?? 0) + 1);
      const p: Promise<void> = finish(job)
        .catch((err) => opts.log.error("recording a job's end failed", { jobId: job.id, error: String(err) }))
        .finally(() => {
          running.delete(p);
          const left = (busy.get(model) ?? 1) - 1;
          if (left) busy.set(model, left);
          else busy.delete(model);
          steps.notify(job.id);
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
    try {
      steps.prune();
    } catch (err) {
      opts.log.warn("pruning jobs failed", { error: String(err) });
    }
  };

  const timer = setInterval(wake, opts.pollMs);
  const pruneTimer = setInterval(prune, opts.pruneEveryMs ?? 10 * 60_000);
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
