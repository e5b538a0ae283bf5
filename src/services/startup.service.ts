// MODELD_LOAD_ON_START, as Triton's --load-model: the listed models (or every
// registered one, for `*`) are loaded when modeld starts, and readiness waits
// until each of them serves, as Kubernetes expects of a model server's pod.
import type { Deps } from "../context";
import { enqueueJob } from "./jobs.service";

/** The models to load at start; throws for an id the model dir does not hold, since readiness would never come. */
export function startupModels(d: Pick<Deps, "config" | "models">): string[] {
  const wanted = d.config.loadOnStart;
  const ids = wanted === "*" ? d.models.list().map((m) => m.id) : wanted;
  const unknown = ids.filter((id) => !d.models.get(id));
  if (unknown.length) throw new Error(`MODELD_LOAD_ON_START names ${unknown.join(", ")}, which ${d.config.modelDir} does not hold`);
  return ids;
}

/** Queues their loads once the job loop runs. */
export function loadOnStart(ids: string[], d: Deps): void {
  for (const id of ids) {
    // A restore already queued says what to load; a load of what already serves is a no-op job.
    if (d.jobs.latestUnfinished(id)) continue;
    const newest = d.models.newestVersion(id);
    if (newest) enqueueJob({ kind: "load", modelId: id, version: newest.version, requestedBy: "startup" }, d);
  }
}

/** True once every model named at start has a session serving. */
export function startupModelsServe(ids: string[], d: Pick<Deps, "runtime">): boolean {
  return ids.every((id) => d.runtime.get(id)?.phase === "ready");
}
