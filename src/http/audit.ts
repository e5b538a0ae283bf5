// Records every admin action, including refused attempts, with who, what, from
// where and the outcome. Which routes are admin actions is decided by the policy
// router they are registered on (see policy.ts).
import { createRoute, z } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import type { Deps } from "../context";
import type { AuditRepo } from "../db/audit.repo";
import type { ApiRouters } from "./app";
import type { AppEnv } from "./env";
import { errorResponses } from "./schemas";

const isRead = (method: string) => method === "GET" || method === "HEAD";

// Absent for in-process requests (app.request), which have no connection.
const sourceIp = (c: Parameters<MiddlewareHandler<AppEnv>>[0]): string | null => c.env?.remoteAddress ?? null;

/** Records every call through it except reads (refusals as AuditRepo.admit says). */
export function auditChanges(audit: AuditRepo): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (isRead(c.req.method)) return next();
    try {
      await next();
    } finally {
      const status = c.res.status;
      const actor = c.get("principal")?.sub ?? "unauthenticated";
      const repeats = audit.admit(actor, sourceIp(c), status);
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
    target: id === "unload" ? null : id,
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
