// Runs at start, before the loop: whatever the previous process left behind
// (clean stop or kill -9) is made consistent with "no session exists yet".
import type { Deps } from "../context";

export interface RecoveryReport {
  interrupted: string[];
  reset: string[];
  restored: string[];
}

export function recover(d: Pick<Deps, "db" | "jobs" | "models" | "settings" | "config" | "log">): RecoveryReport {
  return d.db.tx(() => {
    const interrupted = d.jobs.failInterrupted().map((j) => j.id);
    const claiming = d.models.listClaimingSession();
    const active = d.settings.activeModel();
    const restored: string[] = [];
    for (const m of claiming) {
      d.models.setState(m.id, "unloaded");
      // Reload what was serving, unless a queued job already says what to do with the model.
      if (m.state === "loaded" && d.config.restore && !d.jobs.latestUnfinished(m.id)) {
        d.jobs.insert({ kind: "load", modelId: m.id, requestedBy: "restore", activate: m.id === active });
        restored.push(m.id);
      }
    }
    const activeStillComing = active && (restored.includes(active) || d.jobs.latestUnfinished(active)?.kind === "load");
    if (active && !activeStillComing) d.settings.setActiveModel(null);
    const report = { interrupted, reset: claiming.map((m) => m.id), restored };
    if (interrupted.length || claiming.length) d.log.info("recovered from previous run", { ...report });
    return report;
  });
}
