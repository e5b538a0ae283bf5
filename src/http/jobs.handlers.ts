import type { Deps } from "../context";
import { cancelJob, listJobs, waitForJob } from "../services/jobs.service";
import type { ApiRouters, AppOptions } from "./app";
import { cancelJobRoute, getJobRoute, listJobsRoute } from "./jobs.routes";

export function mountJobRoutes({ read, admin }: ApiRouters, d: Deps, opts: Pick<AppOptions, "isDraining">): void {
  read.openapi(getJobRoute, async (c) => {
    // A stopping server answers a long-poll with the job as it stands; the client polls the next one.
    const job = await waitForJob(c.req.valid("param").id, c.req.valid("query").wait, d, () => opts.isDraining?.() === true);
    return c.json(job, 200);
  });

  read.openapi(listJobsRoute, (c) => {
    const q = c.req.valid("query");
    const jobs = listJobs(q, d);
    const nextBefore = jobs.length === q.limit ? jobs[jobs.length - 1]!.id : null;
    return c.json({ jobs, nextBefore }, 200);
  });

  admin.openapi(cancelJobRoute, (c) =>
    c.json(cancelJob(c.req.valid("param").id, d), 200),
  );
}
