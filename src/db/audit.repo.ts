import { monotonicMs } from "../clock";
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
  /** Refusals of this actor from this address folded into this entry (see admit). */
  repeats: number;
}

/** How long the refusals of one caller from one address share an entry. */
const REFUSAL_WINDOW_MS = 60_000;
/** Callers whose refusals are being folded; past it, the longest-known one is forgotten. */
const MAX_FOLDING = 10_000;

/**
 * Refused calls (401, 403) are recorded once a minute per caller and address, the
 * ones in between counted into that caller's next entry (`repeats`); returns that
 * count when this refusal is to be recorded, undefined when it is folded. One refused
 * POST was one row and one synced commit on the HTTP thread: a client with no token
 * made 2,000 a second, and would have filled ~17 GB of disk a day. One folder for the
 * process, so HTTP and gRPC refusals of a caller share its minute.
 */
function refusalFolder(clock: () => number): (key: string) => number | undefined {
  const folding = new Map<string, { until: number; folded: number }>();
  return (key) => {
    const now = clock();
    const seen = folding.get(key);
    if (seen && now < seen.until) {
      seen.folded++;
      return undefined;
    }
    folding.delete(key);
    if (folding.size >= MAX_FOLDING) folding.delete(folding.keys().next().value!);
    folding.set(key, { until: now + REFUSAL_WINDOW_MS, folded: 0 });
    return seen?.folded ?? 0;
  };
}

/** The longest target recorded: a model id's limit. The caller chooses the path it is taken from. */
const MAX_TARGET = 128;

export function createAuditRepo(db: Db, clock: () => number = monotonicMs) {
  const fold = refusalFolder(clock);
  return {
    /**
     * Whether a call's entry is to be written, and with what `repeats`: every call's
     * but a refusal (401, 403) folded into its caller's next entry (refusalFolder).
     */
    admit(actor: string, sourceIp: string | null, status: number): number | undefined {
      return status === 401 || status === 403 ? fold(`${actor}\n${sourceIp}`) : 0;
    },
    record(e: Omit<AuditEntry, "seq" | "at" | "repeats"> & { repeats?: number }): void {
      db.prepare(
        `INSERT INTO audit (at, actor, action, target, source_ip, status, outcome, request_id, repeats)
         VALUES (@at, @actor, @action, @target, @ip, @status, @outcome, @rid, @repeats)`,
      ).run({
        at: new Date().toISOString(),
        actor: e.actor,
        action: e.action,
        target: e.target?.slice(0, MAX_TARGET) ?? null,
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
