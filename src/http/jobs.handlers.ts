import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Deps } from "../context";
import { cancelJob, listJobs, waitForJob } from "../services/jobs.service";
import { requireRole } from "./auth";
import type { AppEnv } from "./env";
import { cancelJobRoute, getJobRoute, listJobsRoute } from "./jobs.routes";

export function mountJobRoutes(app: OpenAPIHono<AppEnv>, d: Deps): void {
  app.openapi(getJobRoute, async (c) => {
    const job = await waitForJob(c.req.valid("param").id, c.req.valid("query").wait, d);
    return c.json(job, 200);
  });

  app.openapi(listJobsRoute, (c) => {
    const q = c.req.valid("query");
    const jobs = listJobs(q, d);
    const nextBefore = jobs.length === q.limit ? jobs[jobs.length - 1]!.id : null;
    return c.json({ jobs, nextBefore }, 200);
  });

  app.openapi({ ...cancelJobRoute, middleware: [requireRole(d.config.auth, "admin")] }, (c) =>
    c.json(cancelJob(c.req.valid("param").id, d), 200),
  );
}
