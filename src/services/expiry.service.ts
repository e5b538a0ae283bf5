// Idle expiry: a model idle for longer than its keepAlive is unloaded by an
// ordinary unload job, requested by "system" with the reason "idle".
import { monotonicMs } from "../clock";
import type { Deps } from "../context";
import { repeatedFailure } from "../log";
import { keepAliveMs, withDefaults } from "../model-settings";
import { enqueueJob } from "./jobs.service";

type ExpiryDeps = Pick<Deps, "db" | "jobs" | "models" | "runtime" | "lifecycle" | "notifier" | "audit" | "config" | "wake" | "log">;

/** When the routed session of `modelId` expires (monotonicMs()), or null: pinned, forever, or in use. */
export function expiresAt(modelId: string, d: Pick<Deps, "models" | "runtime" | "config">): number | null {
  const session = d.runtime.get(modelId);
  if (!session || session.phase !== "ready" || session.inflight > 0) return null;
  const model = d.models.get(modelId);
  if (!model) return null;
  const settings = withDefaults(model.settings);
  const keep = keepAliveMs(settings, d.config.memory.keepAliveMs);
  return settings.pinned || keep < 0 ? null : session.lastUsedAt + keep;
}

/** Checks the routed sessions every `everyMs`; returns a function that stops it. */
export function startExpiry(d: ExpiryDeps, everyMs = 200): () => void {
  const expireIdle = () => {
    const now = monotonicMs();
    for (const session of d.runtime.sessions()) {
      const at = expiresAt(session.modelId, d);
      if (at === null || at > now || d.runtime.get(session.modelId) !== session) continue;
      // Whatever is queued for the model says what happens next; expiry waits for it.
      if (d.jobs.latestUnfinished(session.modelId)) continue;
      try {
        const { job } = enqueueJob({ kind: "unload", modelId: session.modelId, requestedBy: "system", reason: { kind: "idle" } }, d);
        d.log.info("model idle past its keepAlive: unloading", { modelId: session.modelId, jobId: job.id });
        d.audit.recordSystem(`unload ${session.modelId}: idle past its keepAlive`, session.modelId, "queued", job.id);
      } catch (err) {
        throw new Error(`the idle unload of ${session.modelId} was not queued: ${(err as Error).message}`);
      }
    }
  };
  const checking = repeatedFailure(d.log, "checking models for idle expiry");
  const check = () => {
    // A throw from a timer ends the process: a database that cannot be read must not take the
    // models it serves down with it. The next tick tries again.
    try {
      expireIdle();
      checking.succeeded();
    } catch (err) {
      checking.failed(err);
    }
  };
  const timer = setInterval(check, everyMs);
  return () => clearInterval(timer);
}
