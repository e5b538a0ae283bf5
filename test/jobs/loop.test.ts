// The job loop over fakes: what it guarantees does not depend on SQLite.
import { expect, test } from "bun:test";
import { startJobLoop, type JobSteps } from "../../src/jobs/loop";
import { JobError, type Job, type JobOutcome } from "../../src/jobs/states";
import { createLogger, silentLogger } from "../../src/log";

function fakeJob(id: string, modelId: string): Job {
  return {
    id, kind: "load", modelId, version: "1", state: "pending", phase: "queued", timeline: [], outcome: null,
    force: false, activate: true, reread: false, error: null, requestedBy: "t", reason: null, createdAt: "", startedAt: null, finishedAt: null,
  };
}

/** An in-memory queue whose jobs finish when the test says so. */
function fakes(jobs: Job[], run: (job: Job) => Promise<JobOutcome>) {
  const events: string[] = [];
  const pending = [...jobs];
  const steps: JobSteps = {
    claim(busy) {
      // Like the SQL: the oldest job of a model that is not busy and has no older pending job.
      const i = pending.findIndex((j, k) => !busy.includes(j.modelId) && !pending.slice(0, k).some((o) => o.modelId === j.modelId));
      if (i < 0) return undefined;
      const [job] = pending.splice(i, 1);
      events.push(`start ${job!.id}`);
      return job;
    },
    execute: run,
    complete: (job, outcome) => void events.push(`complete ${job.id} ${outcome.summary}`),
    fail: (job, err) => void events.push(`fail ${job.id} ${err.code}`),
    notify: (id) => void events.push(`notify ${id}`),
    prune: () => {},
  };
  return { steps, events };
}

test("jobs of one model run one at a time in order; other models run beside them; every end is recorded, then notified", async () => {
  const gates = new Map<string, () => void>();
  const { steps, events } = fakes([fakeJob("a1", "a"), fakeJob("a2", "a"), fakeJob("b1", "b")], (job) =>
    new Promise((resolve) => gates.set(job.id, () => resolve({ summary: `ran ${job.id}` }))),
  );
  const loop = startJobLoop(steps, { concurrency: 4, pollMs: 1000, log: silentLogger() });
  await Bun.sleep(5);
  expect(events).toEqual(["start a1", "start b1"]);
  gates.get("a1")!();
  await Bun.sleep(5);
  expect(events).toEqual(["start a1", "start b1", "complete a1 ran a1", "notify a1", "start a2"]);
  gates.get("b1")!();
  gates.get("a2")!();
  await loop.idle();
  expect(events.slice(5)).toEqual(["complete b1 ran b1", "complete a2 ran a2", "notify b1", "notify a2"]);
  await loop.stop(100);
});

test("a JobError fails its job with its code; anything else is INTERNAL; concurrency is a bound", async () => {
  let running = 0;
  let most = 0;
  const jobs = ["x", "y", "z", "w"].map((m) => fakeJob(`${m}1`, m));
  const { steps, events } = fakes(jobs, async (job) => {
    most = Math.max(most, ++running);
    await Bun.sleep(5);
    running--;
    if (job.id === "x1") throw new JobError("LOAD_FAILED", "bad file");
    if (job.id === "y1") throw new TypeError("a bug");
    return { summary: "ok" };
  });
  const loop = startJobLoop(steps, { concurrency: 2, pollMs: 1000, log: silentLogger() });
  await Bun.sleep(50);
  await loop.idle();
  expect(most).toBe(2);
  expect(events.filter((e) => e.startsWith("fail") || e.startsWith("complete")).sort()).toEqual(["complete w1 ok", "complete z1 ok", "fail x1 LOAD_FAILED", "fail y1 INTERNAL"]);
  await loop.stop(100);
});

test("a database that keeps refusing the claim is logged once, not at every poll, and its recovery once", async () => {
  const lines: { level: string; msg: string }[] = [];
  const log = createLogger("info", {}, (l) => lines.push(JSON.parse(l)));
  let failing = true;
  const { steps } = fakes([], async () => ({ summary: "ok" }));
  const claim = steps.claim;
  steps.claim = (busy) => {
    if (failing) throw new Error("the database … could not be read or written: disk I/O error");
    return claim(busy);
  };
  const loop = startJobLoop(steps, { concurrency: 1, pollMs: 2, log });
  await Bun.sleep(60);
  expect(lines.map((l) => `${l.level} ${l.msg}`)).toEqual(["error claiming jobs failed; retried at every tick, logged again when the error changes"]);
  failing = false;
  await Bun.sleep(20);
  expect(lines.map((l) => `${l.level} ${l.msg}`).slice(1)).toEqual(["info claiming jobs works again"]);
  await loop.stop(100);
});
