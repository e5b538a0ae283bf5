// Records every admin action, including refused attempts, with who, what, from
// where and the outcome. Which routes are admin actions is decided by the policy
// router they are registered on (see policy.ts).
import { createRoute, z } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import { monotonicMs } from "../clock";
import type { Deps } from "../context";
import type { AuditRepo } from "../db/audit.repo";
import type { ApiRouters } from "./app";
import type { AppEnv } from "./env";
import { errorResponses } from "./schemas";

const isRead = (method: string) => method === "GET" || method === "HEAD";

// Absent for in-process requests (app.request), which have no connection.
const sourceIp = (c: Parameters<MiddlewareHandler<AppEnv>>[0]): string | null => c.env?.remoteAddress ?? null;

/** How long the refusals of one caller from one address share an entry. */
const REFUSAL_WINDOW_MS = 60_000;
/** Callers whose refusals are being folded; past it, the longest-known one is forgotten. */
const MAX_FOLDING = 10_000;

/**
 * Refused calls (401, 403) are recorded once a minute per caller and address, the
 * ones in between counted into that caller's next entry (`repeats`); returns that
 * count when this refusal is to be recorded, undefined when it is folded. One refused
 * POST was one row and one synced commit on the HTTP thread: a client with no token
 * made 2,000 a second, and would have filled ~17 GB of disk a day.
 */
export function refusalFolder(clock: () => number = monotonicMs): (key: string) => number | undefined {
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

/** The longest target recorded: a model id's limit. The path is the caller's to choose. */
const MAX_TARGET = 128;

/** Records every call through it except reads, refusals folded (refusalFolder). */
export function auditChanges(audit: AuditRepo): MiddlewareHandler<AppEnv> {
  const fold = refusalFolder();
  return async (c, next) => {
    if (isRead(c.req.method)) return next();
    try {
      await next();
    } finally {
      const status = c.res.status;
      const actor = c.get("principal")?.sub ?? "unauthenticated";
      const repeats = status === 401 || status === 403 ? fold(`${actor}\n${sourceIp(c)}`) : 0;
      if (repeats !== undefined) await record(c, audit, { actor, status, repeats });
    }
  };
}

/** The call's entry: who, the route, its target, from where, and the outcome (`ok` or the error's code). */
async function record(c: Context<AppEnv>, audit: AuditRepo, e: { actor: string; status: number; repeats: number }): Promise<void> {
  let outcome = "ok";
  if (e.status >= 400) {
    const body = (await c.res.clone().json().catch(() => null)) as { error?: { code?: string } | string } | null;
    outcome = typeof body?.error === "object" ? (body.error.code ?? "error") : typeof body?.error === "string" ? body.error : "error";
  }
  // /api/v1/{models|jobs}/{id}/… and /v2/repository/models/{name}/…
  const id = c.req.path.split("/")[4] ?? null;
  audit.record({
    ...e,
    // The route that would have handled it, even when auth refused the request earlier.
    action: `${c.req.method} ${c.req.matchedRoutes.filter((r) => r.method !== "ALL").at(-1)?.path ?? c.req.path}`,
    target: id === "unload" ? null : (id?.slice(0, MAX_TARGET) ?? null),
    sourceIp: sourceIp(c),
    outcome,
    requestId: c.get("requestId") ?? null,
  });
}

const AuditEntry = z
  .object({
    seq: z.number().int(),
    at: z.string(),
    actor: z.string().openapi({ description: "The token's `sub`, `unauthenticated`, or `system` for what modeld does by itself (evictions, idle expiry)." }),
    action: z.string().openapi({ example: "POST /api/v1/models/:id/load" }),
    target: z.string().nullable(),
    sourceIp: z.string().nullable(),
    status: z.number().int().openapi({ description: "The HTTP status; 0 for a system action." }),
    outcome: z.string().openapi({ description: "`ok`, or the error code." }),
    requestId: z.string().nullable().openapi({ description: "The request's id; for a system action, its job's id." }),
    repeats: z.number().int().openapi({
      description: "Refused calls (401, 403) of one actor from one address are recorded at most once a minute: how many of its refusals since its previous entry were counted here instead of recorded on their own.",
    }),
  })
  .openapi("AuditEntry");

const listAuditRoute = createRoute({
  method: "get",
  path: "/api/v1/audit",
  tags: ["audit"],
  security: [{ bearerAuth: [] }],
  summary: "The admin audit log, newest first (admin)",
  request: {
    query: z.object({
      limit: z.coerce.number().int().min(1).max(500).default(100),
      before: z.coerce.number().int().min(1).optional().openapi({ description: "Page cursor: `nextBefore` of the previous page." }),
    }),
  },
  responses: {
    200: { description: "A page of entries", content: { "application/json": { schema: z.object({ entries: z.array(AuditEntry), nextBefore: z.number().int().nullable() }) } } },
    ...errorResponses(400, 401, 403),
  },
});

export function mountAuditRoutes({ admin }: ApiRouters, d: Deps): void {
  admin.openapi(listAuditRoute, (c) => {
    const q = c.req.valid("query");
    const entries = d.audit.list(q.limit, q.before);
    return c.json({ entries, nextBefore: entries.length === q.limit ? entries[entries.length - 1]!.seq : null }, 200);
  });
}
