import type { Db } from "./driver";

export interface AuditEntry {
  seq: number;
  at: string;
  actor: string;
  action: string;
  target: string | null;
  sourceIp: string | null;
  status: number;
  outcome: string;
  requestId: string | null;
  /** Refusals of this actor from this address folded into this entry (see auditChanges). */
  repeats: number;
}

export function createAuditRepo(db: Db) {
  return {
    record(e: Omit<AuditEntry, "seq" | "at" | "repeats"> & { repeats?: number }): void {
      db.prepare(
        `INSERT INTO audit (at, actor, action, target, source_ip, status, outcome, request_id, repeats)
         VALUES (@at, @actor, @action, @target, @ip, @status, @outcome, @rid, @repeats)`,
      ).run({
        at: new Date().toISOString(),
        actor: e.actor,
        action: e.action,
        target: e.target,
        ip: e.sourceIp,
        status: e.status,
        outcome: e.outcome,
        rid: e.requestId,
        repeats: e.repeats ?? 0,
      });
    },
    /** What modeld does by itself (evictions, idle expiry): actor "system", status 0, the job's id as request id. */
    recordSystem(action: string, target: string, outcome: string, jobId: string): void {
      this.record({ actor: "system", action, target, sourceIp: null, status: 0, outcome, requestId: jobId });
    },
    /** Newest first; `before` is the seq of the last entry of the previous page. */
    list(limit: number, before?: number): AuditEntry[] {
      return db
        .prepare<{ seq: number; at: string; actor: string; action: string; target: string | null; source_ip: string | null; status: number; outcome: string; request_id: string | null; repeats: number }>(
          `SELECT * FROM audit ${before !== undefined ? "WHERE seq < @before" : ""} ORDER BY seq DESC LIMIT @limit`,
        )
        .all(before !== undefined ? { limit, before } : { limit })
        .map((r) => ({
          seq: r.seq,
          at: r.at,
          actor: r.actor,
          action: r.action,
          target: r.target,
          sourceIp: r.source_ip,
          status: r.status,
          outcome: r.outcome,
          requestId: r.request_id,
          repeats: r.repeats,
        }));
    },
  };
}
export type AuditRepo = ReturnType<typeof createAuditRepo>;
