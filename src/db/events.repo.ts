// The change log behind GET /api/v1/events: rows written by the triggers of
// migration 0003, read in order after a sequence number.
import { toJob, type JobRow } from "./jobs.repo";
import type { Db } from "./driver";
import type { Job } from "../jobs/states";

export type ModelEvent = {
  modelId: string;
  state?: string;
  servingVersion?: string | null;
  version?: string;
  versionState?: string;
  memoryBytes?: number | null;
  error: { code: string; message: string } | null;
};

export type ChangeEvent = { seq: number; at: string } & ({ kind: "job"; job: Job } | { kind: "model"; model: ModelEvent });

interface Row {
  seq: number;
  at: string;
  kind: "job" | "model";
  payload: string;
}

export interface EventFilter {
  /** Only this job's events. */
  jobId?: string;
  /** Only the events of jobs this subject created (no model events). */
  requestedBy?: string;
}

export function createEventsRepo(db: Db) {
  return {
    latestSeq(): number {
      return db.prepare<{ s: number | null }>("SELECT max(seq) AS s FROM events").get()?.s ?? 0;
    },
    after(seq: number, f: EventFilter, limit = 200): ChangeEvent[] {
      const where = ["seq > @seq"];
      const p: Record<string, string | number> = { seq, limit };
      if (f.jobId) (where.push("job_id = @job"), (p.job = f.jobId));
      if (f.requestedBy !== undefined) (where.push("kind = 'job' AND requested_by = @by"), (p.by = f.requestedBy));
      return db
        .prepare<Row>(`SELECT seq, at, kind, payload FROM events WHERE ${where.join(" AND ")} ORDER BY seq LIMIT @limit`)
        .all(p)
        .map((r) =>
          r.kind === "job"
            ? { seq: r.seq, at: r.at, kind: "job" as const, job: toJob(JSON.parse(r.payload) as JobRow) }
            : { seq: r.seq, at: r.at, kind: "model" as const, model: JSON.parse(r.payload) as ModelEvent },
        );
    },
  };
}
export type EventsRepo = ReturnType<typeof createEventsRepo>;
