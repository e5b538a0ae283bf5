// Runs at start, before the loop: whatever the previous process left behind
// (clean stop or kill -9) is made consistent with "no session exists yet", and
// what was serving is queued to come back, at the version that was serving.
import type { Deps } from "../context";

export interface RecoveryReport {
  interrupted: string[];
  restored: string[];
}

export function recover(d: Pick<Deps, "db" | "jobs" | "settings" | "lifecycle" | "config" | "log">): RecoveryReport {
  return d.db.tx(() => {
    const interrupted = d.jobs.failInterrupted().map((j) => j.id);
    const active = d.settings.activeModel();
    const restored: string[] = [];
    for (const s of d.lifecycle.resetAfterRestart()) {
      // Reload what was serving, unless a queued job already says what to do with the model.
      if (!d.config.restore || d.jobs.latestUnfinished(s.modelId)) continue;
      d.jobs.insert({ kind: "load", modelId: s.modelId, version: s.version, requestedBy: "restore", activate: s.modelId === active });
      restored.push(s.modelId);
    }
    d.lifecycle.settleActiveModel((id) => restored.includes(id) || d.jobs.latestUnfinished(id)?.kind === "load");
    const report = { interrupted, restored };
    if (interrupted.length || restored.length) d.log.info("recovered from previous run", { ...report });
    return report;
  });
}
