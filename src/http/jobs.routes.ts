import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses, Job, JobId, JobList, JobListQuery, JobWaitQuery } from "./schemas";

const security = [{ bearerAuth: [] }];
const tags = ["jobs"];

export const getJobRoute = createRoute({
  method: "get",
  path: "/api/v1/jobs/{id}",
  tags,
  security,
  summary: "Get a job: pending, running, completed, failed or cancelled",
  request: { params: z.object({ id: JobId }), query: JobWaitQuery },
  responses: { 200: { description: "The job", content: { "application/json": { schema: Job } } }, ...errorResponses(400, 401, 403, 404) },
});

export const listJobsRoute = createRoute({
  method: "get",
  path: "/api/v1/jobs",
  tags,
  security,
  summary: "List jobs, newest first; filter by state, kind, model or reason",
  request: { query: JobListQuery },
  responses: { 200: { description: "A page of jobs", content: { "application/json": { schema: JobList } } }, ...errorResponses(400, 401, 403) },
});

export const cancelJobRoute = createRoute({
  method: "post",
  path: "/api/v1/jobs/{id}/cancel",
  tags,
  security,
  summary: "Cancel a job (admin)",
  description:
    "A pending job is cancelled at once; a running load is answered as cancelled at once, and its new session's worker releases the memory as soon as ONNX Runtime returns (a cancelled swap leaves the old version serving). Finished jobs, running unloads and loads past their `switching` step (the new version already serves) answer 409.",
  request: { params: z.object({ id: JobId }) },
  responses: { 200: { description: "The cancelled job", content: { "application/json": { schema: Job } } }, ...errorResponses(401, 403, 404, 409, 507) },
});
