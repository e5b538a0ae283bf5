// Server-Sent Events of job and model changes, read from the SQLite change log
// (migration 0003's triggers), so a client that reconnects with Last-Event-ID
// resumes exactly where it stopped, within the job retention window.
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import { monotonicMs } from "../clock";
import type { Deps } from "../context";
import type { ChangeEvent, EventFilter } from "../db/events.repo";
import { AppError } from "../errors";
import { isFinished } from "../jobs/states";
import { getJob } from "../services/jobs.service";
import { isAdmin } from "./auth";
import type { ApiRouters, AppOptions } from "./app";
import type { AppEnv } from "./env";
import { errorResponses, JobId } from "./schemas";

/** Open streams at once; each polls SQLite, so the bound keeps that cost fixed. */
export const MAX_EVENT_STREAMS = 64;
const HEARTBEAT_MS = 15_000;
const POLL_MS = 100;
const BATCH = 200;

const description =
  "`text/event-stream`. Each event has an `id` (its sequence number), an `event` (`job` or `model`) and JSON `data`: a job as `GET /api/v1/jobs/{id}` returns it, or a model change `{modelId, state?, servingVersion?, version?, versionState?, memoryBytes?, error}`. " +
  "Send `Last-Event-ID` (or `?lastEventId=`) to resume after a disconnect; the log is kept as long as finished jobs (MODELD_JOB_RETENTION_HOURS). A comment line is sent every 15 s as a heartbeat. A server that is stopping ends the stream; resume on the next one.";

const sse = { "text/event-stream": { schema: z.string() } };

export function mountEventRoutes({ read }: ApiRouters, d: Deps, opts: Pick<AppOptions, "isDraining">): void {
  let open = 0;

  const stream = (c: Context<AppEnv>, filter: EventFilter, from: number, endsWith?: (e: ChangeEvent) => boolean) => {
    if (open >= MAX_EVENT_STREAMS) throw new AppError("TOO_MANY_STREAMS", `${MAX_EVENT_STREAMS} event streams are open`, undefined, { "Retry-After": "5" });
    open++;
    let seq = from;
    return streamSSE(
      c,
      async (s) => {
        let beat = monotonicMs();
        try {
          // A stopping server ends its streams: clients resume on the next one with Last-Event-ID.
          while (!s.aborted && !s.closed && !opts.isDraining?.()) {
            const batch = d.events.after(seq, filter, BATCH);
            for (const e of batch) {
              seq = e.seq;
              await s.writeSSE({ id: String(e.seq), event: e.kind, data: JSON.stringify(e.kind === "job" ? e.job : e.model) });
              if (endsWith?.(e)) return;
            }
            if (monotonicMs() - beat >= HEARTBEAT_MS) {
              await s.write(": heartbeat\n\n");
              beat = monotonicMs();
            }
            if (batch.length < BATCH) await s.sleep(POLL_MS);
          }
        } finally {
          open--;
        }
      },
      async (err) => c.get("log").warn("event stream failed", { error: String(err) }),
    );
  };

  const resumeFrom = (c: Context<AppEnv>): number | undefined => {
    const raw = c.req.header("last-event-id") ?? c.req.query("lastEventId");
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < 0) throw new AppError("VALIDATION_ERROR", "Last-Event-ID must be a non-negative integer");
    return n;
  };

  read.doc({
    method: "get",
    path: "/api/v1/events",
    tags: ["events"],
    security: [{ bearerAuth: [] }],
    summary: "Live job and model changes (Server-Sent Events)",
    description: `${description} Admins see every event; other tokens see the events of the jobs they created. Without Last-Event-ID the stream starts now.`,
    responses: { 200: { description: "The event stream", content: sse }, ...errorResponses(400, 401, 503) },
  });
  read.get("/api/v1/events", (c) => {
    const p = c.get("principal");
    const filter = isAdmin(p, d.config.auth) ? {} : { requestedBy: p.sub };
    return stream(c, filter, resumeFrom(c) ?? d.events.latestSeq());
  });

  read.doc({
    method: "get",
    path: "/api/v1/jobs/{id}/events",
    tags: ["events"],
    security: [{ bearerAuth: [] }],
    summary: "One job's changes from its start (Server-Sent Events); ends when the job finishes",
    description: `${description} Visible to admins and to the token that created the job. Without Last-Event-ID the job's whole history is sent first.`,
    request: { params: z.object({ id: JobId }) },
    responses: { 200: { description: "The event stream", content: sse }, ...errorResponses(400, 401, 403, 404, 503) },
  });
  read.get("/api/v1/jobs/:id/events", (c) => {
    const job = getJob(c.req.param("id")!, d);
    const p = c.get("principal");
    if (!isAdmin(p, d.config.auth) && job.requestedBy !== p.sub) throw new AppError("FORBIDDEN", "only admins and the job's creator may follow it");
    return stream(c, { jobId: job.id }, resumeFrom(c) ?? 0, (e) => e.kind === "job" && isFinished(e.job.state));
  });
}
