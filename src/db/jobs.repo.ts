import { randomBytes } from "node:crypto";
import type { Job, JobKind, JobOutcome, JobPhase, JobReason, JobState } from "../jobs/states";
import type { Db, Params } from "./driver";

export interface JobRow {
  seq: number;
  id: string;
  kind: JobKind;
  model_id: string;
  version: number | null;
  state: JobState;
  phase: JobPhase | null;
  timeline: string;
  outcome: string | null;
  force: number;
  activate: number;
  reread: number;
  error_code: string | null;
  error_message: string | null;
  requested_by: string;
  idempotency_key: string | null;
  request_hash: string | null;
  reason: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

export function toJob(r: JobRow): Job {
  return {
    id: r.id,
    kind: r.kind,
    modelId: r.model_id,
    version: r.version === null ? null : String(r.version),
    state: r.state,
    phase: r.phase,
    timeline: JSON.parse(r.timeline),
    outcome: r.outcome ? JSON.parse(r.outcome) : null,
    force: r.force === 1,
    activate: r.activate === 1,
    reread: r.reread === 1,
    error: r.error_code ? { code: r.error_code, message: r.error_message ?? "" } : null,
    requestedBy: r.requested_by,
    reason: r.reason ? JSON.parse(r.reason) : null,
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
  };
}

const now = () => new Date().toISOString();

/** 128 random bits: job ids are capabilities to read a job, so they must not be guessable. */
export const newJobId = () => "job_" + randomBytes(16).toString("base64url");

export interface NewJob {
  kind: JobKind;
  modelId: string;
  /** The version a load targets. */
  version?: number | null;
  requestedBy: string;
  force?: boolean;
  activate?: boolean;
  reread?: boolean;
  idempotencyKey?: string | null;
  requestHash?: string | null;
  reason?: JobReason | null;
}

export interface JobFilter {
  state?: JobState;
  kind?: JobKind;
  modelId?: string;
  reason?: JobReason["kind"];
  limit: number;
  /** Jobs created before the job with this id (newest first paging). */
  before?: string;
}

export function createJobsRepo(db: Db) {
  const getRow = (id: string) => db.prepare<JobRow>("SELECT * FROM jobs WHERE id = @id").get({ id });
  const finish = (id: string, state: JobState, error: { code: string; message: string } | null, from: string, outcome: JobOutcome | null = null) =>
    db
      .prepare(
        `UPDATE jobs SET state = @state, error_code = @code, error_message = @msg, outcome = @outcome, finished_at = @at
         WHERE id = @id AND state IN (${from})`,
      )
      .run({ id, state, code: error?.code ?? null, msg: error?.message ?? null, outcome: outcome && JSON.stringify(outcome), at: now() }).changes > 0;

  return {
    get(id: string): Job | undefined {
      const r = getRow(id);
      return r && toJob(r);
    },
    insert(j: NewJob): Job {
      const id = newJobId();
      db.prepare(
        `INSERT INTO jobs (id, kind, model_id, version, phase, timeline, force, activate, reread, requested_by, idempotency_key, request_hash, reason, created_at)
         VALUES (@id, @kind, @model, @version, 'queued', json_array(json_object('phase', 'queued', 'at', @at)), @force, @activate, @reread, @by, @key, @hash, @reason, @at)`,
      ).run({
        reason: j.reason ? JSON.stringify(j.reason) : null,
        id,
        kind: j.kind,
        model: j.modelId,
        version: j.version ?? null,
        force: j.force ? 1 : 0,
        activate: j.activate === false ? 0 : 1,
        reread: j.reread ? 1 : 0,
        by: j.requestedBy,
        key: j.idempotencyKey ?? null,
        hash: j.requestHash ?? null,
        at: now(),
      });
      return toJob(getRow(id)!);
    },
    /**
     * A job the caller runs itself, already running (an eviction runs inside the
     * load that needs the room). Not written while another job of the model runs.
     */
    insertRunning(j: NewJob & { reason: JobReason }): Job | undefined {
      const id = newJobId();
      const at = now();
      const written = db
        .prepare(
          `INSERT INTO jobs (id, kind, model_id, state, phase, timeline, force, activate, requested_by, reason, created_at, started_at)
           SELECT @id, @kind, @model, 'running', 'queued', json_array(json_object('phase', 'queued', 'at', @at)), @force, 0, @by, @reason, @at, @at
           WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE model_id = @model AND state = 'running')`,
        )
        .run({ id, kind: j.kind, model: j.modelId, force: j.force ? 1 : 0, by: j.requestedBy, reason: JSON.stringify(j.reason), at }).changes;
      return written ? toJob(getRow(id)!) : undefined;
    },
    /** The newest job of the model that has not finished, if any. */
    latestUnfinished(modelId: string): Job | undefined {
      const r = db
        .prepare<JobRow>(
          "SELECT * FROM jobs WHERE model_id = @m AND state IN ('pending', 'running') ORDER BY seq DESC LIMIT 1",
        )
        .get({ m: modelId });
      return r && toJob(r);
    },
    /** An unfinished load of this version, if any. */
    unfinishedLoadOf(modelId: string, version: number): Job | undefined {
      const r = db
        .prepare<JobRow>("SELECT * FROM jobs WHERE model_id = @m AND version = @v AND kind = 'load' AND state IN ('pending', 'running') LIMIT 1")
        .get({ m: modelId, v: version });
      return r && toJob(r);
    },
    countUnfinished(): number {
      return db.prepare<{ n: number }>("SELECT count(*) AS n FROM jobs WHERE state IN ('pending', 'running')").get()!.n;
    },
    byIdempotencyKey(requestedBy: string, key: string): (Job & { requestHash: string | null }) | undefined {
      const r = db
        .prepare<JobRow>("SELECT * FROM jobs WHERE requested_by = @by AND idempotency_key = @key")
        .get({ by: requestedBy, key });
      return r && { ...toJob(r), requestHash: r.request_hash };
    },
    /**
     * Atomically takes the oldest pending job whose model has no running job,
     * so jobs of one model run one at a time and in order. `busyModels` are
     * models this process is still working on even though their job row says
     * otherwise (a job cancelled while it executes).
     */
    claimNext(busyModels: string[] = []): Job | undefined {
      const r = db
        .prepare<JobRow>(
          `UPDATE jobs SET state = 'running', started_at = @at
           WHERE seq = (
             SELECT p.seq FROM jobs p
             WHERE p.state = 'pending'
               AND p.model_id NOT IN (SELECT value FROM json_each(@busy))
               AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.model_id = p.model_id AND r.state = 'running')
               AND NOT EXISTS (SELECT 1 FROM jobs e WHERE e.model_id = p.model_id AND e.state = 'pending' AND e.seq < p.seq)
             ORDER BY p.seq LIMIT 1)
           RETURNING *`,
        )
        .get({ at: now(), busy: JSON.stringify(busyModels) });
      return r && toJob(r);
    },
    /** Records the step a running job entered; a job that is no longer running keeps its record. */
    setPhase(id: string, phase: JobPhase): void {
      db.prepare(
        `UPDATE jobs SET phase = @phase, timeline = json_insert(timeline, '$[#]', json_object('phase', @phase, 'at', @at))
         WHERE id = @id AND state = 'running'`,
      ).run({ id, phase, at: now() });
    },
    markForce(id: string): void {
      db.prepare("UPDATE jobs SET force = 1 WHERE id = @id").run({ id });
    },
    complete: (id: string, outcome: JobOutcome) => finish(id, "completed", null, "'running'", outcome),
    fail: (id: string, error: { code: string; message: string }) => finish(id, "failed", error, "'running'"),
    /** A running job can be cancelled only before its switch: past it, the new session already serves. */
    cancel: (id: string, from: "pending" | "running") =>
      db
        .prepare(
          `UPDATE jobs SET state = 'cancelled', error_code = 'CANCELLED', error_message = 'cancelled by an admin', finished_at = @at
           WHERE id = @id AND state = @from AND (phase IS NULL OR phase NOT IN ('switching', 'draining', 'releasing'))`,
        )
        .run({ id, from, at: now() }).changes > 0,
    /** Marks jobs a dead process left running as failed; returns their ids. */
    failInterrupted(): Job[] {
      return db
        .prepare<JobRow>(
          `UPDATE jobs SET state = 'failed', error_code = 'INTERRUPTED',
             error_message = 'modeld stopped while this job was running', finished_at = @at
           WHERE state = 'running' RETURNING *`,
        )
        .all({ at: now() })
        .map(toJob);
    },
    list(f: JobFilter): Job[] {
      const where: string[] = [];
      const p: Params = { limit: f.limit };
      if (f.state) (where.push("state = @state"), (p.state = f.state));
      if (f.kind) (where.push("kind = @kind"), (p.kind = f.kind));
      if (f.modelId) (where.push("model_id = @model"), (p.model = f.modelId));
      if (f.reason) (where.push("json_extract(reason, '$.kind') = @reason"), (p.reason = f.reason));
      if (f.before) (where.push("seq < (SELECT seq FROM jobs WHERE id = @before)"), (p.before = f.before));
      const sql = `SELECT * FROM jobs ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY seq DESC LIMIT @limit`;
      return db.prepare<JobRow>(sql).all(p).map(toJob);
    },
    /** Finished jobs and events older than the cutoff go; unfinished jobs never do. */
    pruneFinishedBefore(cutoffIso: string): number {
      db.prepare("DELETE FROM events WHERE at < @cutoff").run({ cutoff: cutoffIso });
      return db
        .prepare("DELETE FROM jobs WHERE state IN ('completed', 'failed', 'cancelled') AND finished_at < @cutoff")
        .run({ cutoff: cutoffIso }).changes;
    },
  };
}
export type JobsRepo = ReturnType<typeof createJobsRepo>;
