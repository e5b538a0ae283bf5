// The one owner of a model's lifecycle: the only code that changes a model's or
// a version's state, the serving version and the active model, in SQLite and
// in the runtime together. Every state write goes through the transition
// table; runtime side effects (routing, stopping, releasing) happen only after
// the transaction that records them has committed.
import { basename } from "node:path";
import type { Config } from "../config";
import type { Db } from "../db/driver";
import type { ErrorInfo, ModelsRepo, ModelState, VersionRecord } from "../db/models.repo";
import type { SettingsRepo } from "../db/settings.repo";
import { unlessDiskFull, writeWhenRoom } from "../db/storage";
import type { Logger } from "../log";
import { withDefaults, type ModelSettings } from "../model-settings";
import { budgetBytes, formatBytes } from "../units";
import { RuntimeError, type SessionIdentity } from "../runtime/model-worker";
import type { CrashReport, ModelRuntime } from "../runtime/model-runtime";
import type { SessionOptions } from "../runtime/protocol";
import { sha256Files } from "../runtime/sha256";
import { AppError, isStorageFull } from "../errors";
import { IllegalTransition, LifecycleError } from "./errors";
import { currentIdentity, fingerprint, resolveModelPath, versionFiles } from "./model-files";
import type { Eviction, LifecycleControl, LifecycleOutcome } from "./phases";
import { admit, createGate, creationPeakBytes, estimateFromSize, memoryNow, residentBytes, type Holder } from "./memory";
import { chooseProviders } from "./providers";
import { assertLegal } from "./transitions";

export interface LifecycleDeps {
  config: Config;
  db: Db;
  models: ModelsRepo;
  settings: SettingsRepo;
  runtime: ModelRuntime;
  availableProviders: string[];
  log: Logger;
}

export interface LoadRequest {
  modelId: string;
  /** Null or absent: the newest registered version. */
  version?: number | null;
  activate: boolean;
  /**
   * The version's file as it is now, as Triton's repository load takes it: if the
   * version serves and its file changed since it was registered, a fresh session is
   * made from the file and its facts recorded anew at the switch. Without it, a
   * changed file fails CHECKSUM_MISMATCH, and a load of what serves changes nothing.
   */
  reread?: boolean;
}

export interface WasServing {
  modelId: string;
  version: number;
}

/** The states that claim a session exists or is on its way. */
const CLAIMING_SESSION: ModelState[] = ["loading", "loaded", "unloading"];

/** The settings that need a new session when they change, as one comparable string. */
function sessionTag(settings: ModelSettings, providers: string[]): string {
  return JSON.stringify({ warmup: settings.warmup, providers, session: sessionOptions(settings.session), batching: settings.batching });
}

/** The model's session settings in ONNX Runtime's names. */
function sessionOptions(s: ModelSettings["session"]): SessionOptions {
  return {
    ...(s.intraOpThreads !== undefined ? { intraOpNumThreads: s.intraOpThreads } : {}),
    ...(s.interOpThreads !== undefined ? { interOpNumThreads: s.interOpThreads } : {}),
    ...(s.graphOptimizationLevel ? { graphOptimizationLevel: s.graphOptimizationLevel } : {}),
    ...(s.executionMode ? { executionMode: s.executionMode } : {}),
  };
}

function must(changed: boolean, what: string): void {
  // The guard missed: the row is not in a state this step can start from. Jobs of one
  // model are serialized, so this is a bug, and it fails the job loudly (INTERNAL)
  // rather than leaving a half-made change.
  if (!changed) throw new IllegalTransition(`lifecycle: ${what} found the model in an unexpected state`);
}

/** Runtime and file errors, in the lifecycle's words. */
function toLifecycleError(err: unknown): LifecycleError {
  if (err instanceof LifecycleError) return err;
  if (isStorageFull(err)) return new LifecycleError("STORAGE_FULL", err.message);
  if (err instanceof RuntimeError) {
    switch (err.reason) {
      case "LOAD_TIMEOUT":
      case "UNSAFE_EXTERNAL_DATA":
      case "WARMUP_FAILED":
        return new LifecycleError(err.reason, err.message);
      case "STOPPED":
        return new LifecycleError("CANCELLED", err.message);
      case "TERMINATED":
        return new LifecycleError("WORKER_CRASHED", err.message);
      default:
        return new LifecycleError("LOAD_FAILED", err.message);
    }
  }
  return new LifecycleError("LOAD_FAILED", err instanceof Error ? err.message : String(err));
}

export function createLifecycle(d: LifecycleDeps) {
  const gate = createGate();

  function transition(modelId: string, from: readonly ModelState[], to: ModelState, error: ErrorInfo | null = null): boolean {
    assertLegal(`model ${modelId}`, from, to);
    return d.models.updateState(modelId, { from, to, error });
  }

  /**
   * Models whose rows a write that met a full disk left behind, for `settle`.
   * Only these are settled, so a lifecycle bug that leaves rows wrong still
   * shows in `violations()` instead of being quietly repaired.
   */
  const leftToSettle = new Set<string>();

  /**
   * A write that records what already happened. A full disk leaves it to the
   * job's end, which makes the same change (settle) once the disk has room, so
   * it never fails a job whose work is done.
   */
  function recordOrLeaveToSettle(modelId: string, write: () => void): void {
    unlessDiskFull(() => d.db.tx(write), () => leftToSettle.add(modelId));
  }

  function transitionVersion(modelId: string, version: number, from: readonly ModelState[], to: ModelState, error: ErrorInfo | null = null): boolean {
    assertLegal(`model ${modelId} version ${version}`, from, to);
    return d.models.updateVersionState(modelId, version, { from, to, error });
  }

  /** settle's work, inside its transaction. */
  function settleRows(modelId: string, error: ErrorInfo | null): void {
    const model = d.models.get(modelId);
    const session = d.runtime.get(modelId);
    const serving = session?.phase === "ready" ? session.version : null;
    const ended = (state: ModelState): ModelState => (state === "unloading" || !error ? "unloaded" : "failed");
    const versions = model ? d.models.versions(modelId).filter((v) => CLAIMING_SESSION.includes(v.state) && String(v.version) !== serving) : [];
    // A routed session was switched in by a committed write, so the model's own row agrees with it.
    const modelMoves = model !== undefined && serving === null && CLAIMING_SESSION.includes(model.state);
    // Nothing left to move: done. Otherwise the mark stays until a settle finds nothing,
    // so a transaction that does not commit (the disk still full) is settled again.
    if (!versions.length && !modelMoves) return void leftToSettle.delete(modelId);
    for (const v of versions) {
      const to = ended(v.state);
      transitionVersion(modelId, v.version, [v.state], to, to === "failed" ? error : null);
      d.models.setVersionMemory(modelId, v.version, null);
    }
    if (!modelMoves) return;
    const to = ended(model.state);
    transition(modelId, [model.state], to, to === "failed" ? error : null);
    d.models.setServingVersion(modelId, null);
    d.settings.clearActiveModelIf(modelId);
  }

  async function locateFile(path: string): Promise<string> {
    try {
      return (await resolveModelPath(d.config.modelDir, path)).abs;
    } catch (err) {
      throw new LifecycleError("MODEL_FILE_MISSING", err instanceof AppError ? err.message : String(err));
    }
  }

  async function verifyChecksum(path: string, v: VersionRecord): Promise<void> {
    const files = versionFiles(path, v.statIdentity);
    let actual: string;
    try {
      actual = await sha256Files(files);
    } catch (err) {
      throw new LifecycleError("MODEL_FILE_MISSING", (err as Error).message);
    }
    if (actual !== v.sha256) {
      const what = files.length > 1 ? `the sha256 of ${v.path} and its external data (${files.slice(1).map((f) => basename(f)).join(", ")})` : "file sha256";
      throw new LifecycleError("CHECKSUM_MISMATCH", `${what} is ${actual}, registered as ${v.sha256}; if the change is intended, POST /api/v1/models/rescan records it while the version is not loaded (or register the file as a new version)`);
    }
  }

  /** Whether the version's files differ from what was registered; a file that is gone has changed. */
  async function fileChanged(v: VersionRecord): Promise<boolean> {
    try {
      return (await currentIdentity(await locateFile(v.path), v.statIdentity)) !== v.statIdentity;
    } catch {
      return true;
    }
  }

  function resolveVersion(modelId: string, version: number | null | undefined): VersionRecord {
    const v = version ? d.models.version(modelId, version) : d.models.newestVersion(modelId);
    if (!v) throw new LifecycleError("MODEL_VERSION_NOT_FOUND", `model ${modelId} has no version ${version ?? "registered"}`);
    return v;
  }

  const cancelled = () => new LifecycleError("CANCELLED", "cancelled while the session was being created");

  /**
   * What a version is expected to cost: its file's measured footprint, else its
   * size times the estimate factor; never less than the file, because an RSS
   * delta undercounts when the allocator reuses memory an earlier unload freed.
   */
  function estimatedBytes(v: VersionRecord): number {
    return Math.max(d.models.footprint(v.sha256) ?? estimateFromSize(v.sizeBytes), v.sizeBytes);
  }

  /** Every live session as the budget sees it, and whether it could give way to `forModel`. */
  function holders(forModel: string, ctl: LifecycleControl): Holder[] {
    return d.runtime.sessions().map((s) => {
      const pinned = d.models.get(s.modelId)?.settings.pinned === true;
      const routed = d.runtime.get(s.modelId) === s;
      const keeps =
        s.modelId === forModel ? "being replaced" :
        !routed || s.phase !== "ready" ? `${s.phase === "closed" ? "releasing" : s.phase}` :
        pinned ? "pinned" :
        s.inflight > 0 ? `${s.inflight} requests in flight` :
        !ctl.evict ? "cannot be evicted here" : null;
      return { modelId: s.modelId, version: s.version, bytes: s.accountedBytes, lastUsedAt: s.lastUsedAt, keeps };
    });
  }

  /**
   * Makes room for `need` bytes before a session is created, evicting idle
   * versions least recently used first, each as an unload job of its own, and
   * refuses a load whose creation peak the host or the cgroup cannot give.
   * Called with the gate held, so two loads never both decide that they fit.
   */
  async function makeRoom(modelId: string, what: string, need: number, fileBytes: number, ctl: LifecycleControl): Promise<void> {
    const budget = d.config.memory.budget;
    const memory = memoryNow();
    const decision = budget ? admit(need, budgetBytes(budget, memory.limit.bytes), holders(modelId, ctl), what) : { fits: true as const, evict: [] };
    if (!decision.fits) throw new LifecycleError("INSUFFICIENT_MEMORY", decision.message);
    // Whatever the budget allows, a load the kernel cannot give room fails fast instead of
    // meeting the OOM killer, which would take every model this process serves with it.
    const peak = creationPeakBytes(need, fileBytes);
    const available = memory.available;
    const freed = decision.evict.reduce((n, h) => n + h.bytes, 0);
    if (peak > available.bytes + freed) {
      throw new LifecycleError(
        "INSUFFICIENT_MEMORY",
        `${what} needs ${formatBytes(peak)} (${peak} bytes) while its session is created but only ${formatBytes(available.bytes)} (${available.bytes} bytes) is available ${available.where}` +
          (freed ? `, ${formatBytes(freed)} more once idle models give way` : ""),
      );
    }
    for (const victim of decision.evict) {
      const eviction = ctl.evict?.(victim.modelId, what);
      if (!eviction) throw new LifecycleError("INSUFFICIENT_MEMORY", `${what} needed room from ${victim.modelId}, which started a job of its own meanwhile`);
      await runEviction(victim.modelId, eviction);
    }
  }

  async function runEviction(modelId: string, eviction: Eviction): Promise<void> {
    try {
      eviction.finish(await unload(modelId, eviction.ctl));
    } catch (err) {
      eviction.fail(err);
      throw err;
    }
  }

  /**
   * Loads a version. When another session of the model serves, this is a swap:
   * the new session is created and warmed beside it, switched in at one
   * instant, and the old one drained and released. A failure before the switch
   * leaves the old session serving, untouched.
   */
  async function load(req: LoadRequest, ctl: LifecycleControl): Promise<LifecycleOutcome> {
    const model = d.models.get(req.modelId);
    if (!model) throw new LifecycleError("MODEL_NOT_FOUND", `model ${req.modelId} was deleted`);
    const target = resolveVersion(model.id, req.version);
    const settings = withDefaults(model.settings);
    // A provider that cannot be had fails the load like any other load error, recorded on the version.
    let providers: ReturnType<typeof chooseProviders> | undefined;
    let providerError: unknown;
    try {
      providers = chooseProviders(settings.providers ?? d.config.runtime.executionProviders, d.availableProviders, d.config.runtime.allowCpuFallback);
    } catch (err) {
      providerError = err;
    }
    const identity: SessionIdentity = { modelId: model.id, version: String(target.version), tag: sessionTag(settings, providers?.chosen ?? []) };
    const routed = d.runtime.get(model.id);
    const serving = routed?.phase === "ready" ? routed : undefined;
    const reread = req.reread === true && serving?.version === identity.version && (await fileChanged(target));
    if (serving && serving.version === identity.version && serving.tag === identity.tag && !reread) {
      if (req.activate) d.settings.setActiveModel(model.id);
      return { summary: "already-loaded", version: identity.version };
    }
    for (const w of providers?.warnings ?? []) d.log.warn(w, { modelId: model.id });

    // A swap to the version already serving is a fresh session of it, with new settings:
    // the version stays loaded throughout, so its state does not move.
    const swap = serving !== undefined;
    const sameVersion = serving?.version === identity.version;
    ctl.phase("verifying");
    d.db.tx(() => {
      if (!swap) must(transition(model.id, ["unloaded", "failed"], "loading"), "a load");
      if (!sameVersion) must(transitionVersion(model.id, target.version, ["unloaded", "failed"], "loading"), "a load");
    });

    let created: ReturnType<ModelRuntime["create"]> | undefined;
    // Once the new session is routed it serves: nothing that fails later may stop it or mark it failed.
    let switched = false;
    try {
      if (!providers) throw providerError;
      const path = await locateFile(target.path);
      // Hashed before admission, so what is budgeted and checked below is the file as it is now.
      const facts = reread ? await fingerprint(path) : undefined;
      const file: VersionRecord = facts ? { ...target, ...facts } : target;
      if (ctl.cancelled()) throw cancelled();
      const need = estimatedBytes(file);
      // Admission and measurement hold the gate: one load at a time decides what fits and
      // measures what it cost, so neither decision nor measurement is blurred by another load.
      const releaseGate = await gate.acquire();
      let made: PromiseSettledResult<Awaited<ReturnType<ModelRuntime["create"]>>>;
      let verified: PromiseSettledResult<void>;
      let measured: number;
      try {
        await makeRoom(model.id, `${model.id}@${target.version}`, need, file.sizeBytes, ctl);
        if (ctl.cancelled()) throw cancelled();
        // A spare thread still starting would count as this session's cost.
        await d.runtime.ensureSpare();
        const before = residentBytes();
        ctl.phase("creating_session");
        // An unchanged stat identity proves the file is the one hashed at registration.
        // Otherwise the checksum is computed in a hash worker while ONNX Runtime creates
        // the session in the model's worker; the session serves nothing until both finished.
        const unchanged = file.statIdentity !== null && (await currentIdentity(path, file.statIdentity)) === file.statIdentity;
        const checksum = d.config.runtime.verifyChecksum && !unchanged ? verifyChecksum(path, file) : Promise.resolve();
        checksum.catch((e: Error) => d.runtime.stopCreating(model.id, e));
        const request = {
          path,
          executionProviders: providers.chosen,
          warmup: { ...settings.warmup, maxElements: d.config.runtime.maxTensorElements },
          sessionOptions: sessionOptions(settings.session),
          batching: settings.batching ?? undefined,
          crashAfterRuns: d.config.runtime.faultWorkerCrashAfterRuns,
        };
        created = d.runtime.create(identity, request, d.config.jobs.loadTimeoutMs, {
          onWarming: () => ctl.phase("warming"),
          accountedBytes: need,
        });
        // When both fail, a changed file is the cause worth reporting, not ONNX Runtime's parse error.
        [made, verified] = await Promise.allSettled([created, checksum]);
        measured = Math.max(0, residentBytes() - before);
      } finally {
        releaseGate();
        void d.runtime.ensureSpare();
      }
      if (verified.status === "rejected") throw verified.reason;
      if (made.status === "rejected") throw made.reason;
      const { session, info } = made.value;
      d.models.recordFootprint(file.sha256, measured);
      // From now on the session counts what the next load of this file would be estimated at.
      session.accountedBytes = estimatedBytes(file);
      if (ctl.cancelled()) throw cancelled();
      ctl.phase("switching");
      // Checked synchronously before the commit and the switch, so the session the
      // database is about to name is alive when requests are routed to it.
      if (session.phase !== "ready") throw new RuntimeError("TERMINATED", `the new session of ${model.id} ended before it could serve`);
      const lostOld = swap && d.runtime.get(model.id) !== serving;
      d.db.tx(() => {
        d.models.setVersionMetadata(model.id, target.version, info.inputs, info.outputs);
        if (facts) d.models.updateVersionFile(model.id, target.version, facts);
        // First, so no change event shows the model loaded with nothing serving.
        d.models.setServingVersion(model.id, target.version);
        // The old session crashed while the new one was being created: the crash
        // marked the model (and its serving version) failed, and this load brings them back.
        if (lostOld) must(transition(model.id, ["failed"], "loading"), "the switch");
        if (lostOld && sameVersion) must(transitionVersion(model.id, target.version, ["failed"], "loading"), "the switch");
        if (!sameVersion || lostOld) must(transitionVersion(model.id, target.version, ["loading"], "loaded"), "the switch");
        if (serving && !sameVersion && !lostOld) must(transitionVersion(model.id, Number(serving.version), ["loaded"], "unloading"), "the switch");
        if (!swap || lostOld) must(transition(model.id, ["loading"], "loaded"), "the switch");
        d.models.setVersionMemory(model.id, target.version, measured);
        if (req.activate) d.settings.setActiveModel(model.id);
      });
      const previous = d.runtime.route(session);
      switched = true;
      const outcome: LifecycleOutcome = {
        summary: `loaded on ${info.providers.join(",")}`,
        version: identity.version,
        memoryBytes: measured,
        ...(settings.batching ? { batching: info.batching !== undefined } : {}),
      };
      if (!previous) return outcome;

      ctl.phase("draining");
      const release = await d.runtime.release(previous, d.config.jobs.unloadTimeoutMs, () => ctl.phase("releasing"));
      if (!sameVersion) {
        recordOrLeaveToSettle(model.id, () => {
          transitionVersion(model.id, Number(previous.version), ["unloading"], "unloaded");
          d.models.setVersionMemory(model.id, Number(previous.version), null);
        });
      }
      return { ...outcome, replaced: { version: previous.version, release } };
    } catch (err) {
      const e = toLifecycleError(err);
      const cause = err instanceof IllegalTransition ? err : e;
      // Whatever failed after the switch, the new session serves: it is not stopped, nor its version marked failed.
      if (switched) throw cause;
      // A session that finished creating after the failure must not linger unrouted.
      void created?.then(({ session }) => d.runtime.stop(session, e), () => {});
      const to: ModelState = e.code === "CANCELLED" ? "unloaded" : "failed";
      const error = to === "failed" ? { code: e.code, message: e.message } : null;
      recordOrLeaveToSettle(model.id, () => {
        if (!sameVersion) transitionVersion(model.id, target.version, ["loading"], to, error);
        if (!swap) transition(model.id, ["loading"], to, error);
      });
      throw cause;
    }
  }

  /** Drains (or, forced, stops) the model's serving session and releases it. */
  async function unload(modelId: string, ctl: LifecycleControl): Promise<LifecycleOutcome> {
    const session = d.runtime.get(modelId);
    if (!session) return { summary: "not-loaded", reclaimedBytes: 0 };
    const version = Number(session.version);
    const forced = ctl.forced();
    ctl.phase(forced ? "releasing" : "draining");
    d.db.tx(() => {
      transition(modelId, ["loaded"], "unloading");
      transitionVersion(modelId, version, ["loaded"], "unloading");
      d.models.setServingVersion(modelId, null);
      d.settings.clearActiveModelIf(modelId);
    });
    const before = residentBytes();
    let release: "released" | "forced" = "forced";
    if (forced) d.runtime.stop(session, new RuntimeError("UNLOADING", `model ${modelId} was force-unloaded`));
    else release = await d.runtime.release(session, d.config.jobs.unloadTimeoutMs, () => ctl.phase("releasing"));
    // The memory comes back when the thread has ended; a thread still inside ONNX Runtime after
    // the bound gives back what it had so far (a forced unload of a stuck call: 0).
    await Promise.race([session.exited(), new Promise((r) => setTimeout(r, d.config.jobs.unloadTimeoutMs))]);
    const reclaimedBytes = Math.max(0, before - residentBytes());
    recordOrLeaveToSettle(modelId, () => {
      transitionVersion(modelId, version, ["unloading"], "unloaded");
      transition(modelId, ["unloading"], "unloaded");
      d.models.setVersionMemory(modelId, version, null);
    });
    return { summary: release, reclaimedBytes };
  }

  return {
    transition,
    transitionVersion,
    load,
    unload,
    estimatedBytes,

    /** Ends a load in progress (cancel, force unload): its session stops, its caller sees CANCELLED. */
    cancelCreating(modelId: string): void {
      d.runtime.stopCreating(modelId, new RuntimeError("STOPPED", "cancelled"));
    },

    /** Force unload escalation: every session of the model stops now, requests still waiting get 503. */
    stopAll(modelId: string): void {
      d.runtime.stopAll(modelId, new RuntimeError("UNLOADING", `model ${modelId} was force-unloaded`));
    },

    /** A session's worker died unasked. Only the routed one changes the model: the others belong to a running job. */
    workerCrashed(report: CrashReport): void {
      d.log.error("model worker crashed", { modelId: report.modelId, version: report.version, routed: report.routed });
      if (!report.routed) return;
      const error = { code: "WORKER_CRASHED", message: "the model's worker died; load it again" };
      // Guarded writes: retried after a full disk, they change nothing a later job already settled.
      // Until they land, a job of the model that starts settles its rows first.
      const record = () => {
        leftToSettle.add(report.modelId);
        d.db.tx(() => {
          transitionVersion(report.modelId, Number(report.version), ["loaded"], "failed", error);
          d.models.setVersionMemory(report.modelId, Number(report.version), null);
          if (transition(report.modelId, ["loaded"], "failed", error)) {
            d.models.setServingVersion(report.modelId, null);
            d.settings.clearActiveModelIf(report.modelId);
          }
        });
        leftToSettle.delete(report.modelId);
      };
      void writeWhenRoom(record, { log: d.log, what: `recording ${report.modelId}'s worker crash`, retryMs: d.config.jobs.pollMs }).catch((err) =>
        d.log.error("recording a worker crash failed", { modelId: report.modelId, error: String(err) }),
      );
    },

    /**
     * Makes a model's rows say what the runtime has, as a job of it starts and
     * ends, when a write that met a full disk was left to it: such rows can be
     * mid-transition, claiming a session nothing routes. Those become `failed`
     * with `error`, or `unloaded` without one (a cancel, a start). Joins the
     * caller's transaction (a job's end), or makes its own, only when there is
     * something to settle; runs while no other job of the model runs.
     */
    settle(modelId: string, error: ErrorInfo | null): void {
      if (leftToSettle.has(modelId)) d.db.tx(() => settleRows(modelId, error));
    },

    /**
     * At start no session exists: every state that claims one goes back to
     * unloaded. Returns what was serving, for restore. Runs inside the caller's
     * transaction.
     */
    resetAfterRestart(): WasServing[] {
      const claiming = d.models.listClaimingSession();
      const wasServing: WasServing[] = [];
      for (const v of claiming.versions) {
        transitionVersion(v.modelId, v.version, CLAIMING_SESSION, "unloaded");
        d.models.setVersionMemory(v.modelId, v.version, null);
      }
      for (const m of claiming.models) {
        if (m.state === "loaded" && m.servingVersion !== null) wasServing.push({ modelId: m.id, version: m.servingVersion });
        transition(m.id, CLAIMING_SESSION, "unloaded");
        d.models.setServingVersion(m.id, null);
      }
      return wasServing;
    },

    /**
     * The owner's invariant, as it holds whenever no job is running: a model is
     * `loaded` exactly when the runtime routes a ready session to it, that
     * session's version is the serving version and the only `loaded` one, no
     * version is mid-transition, and the active model is loaded. Returns what
     * breaks it, for the stress tests.
     */
    violations(): string[] {
      const found: string[] = [];
      const active = d.settings.activeModel();
      for (const m of d.models.list()) {
        const session = d.runtime.get(m.id);
        const versions = d.models.versions(m.id);
        const loaded = versions.filter((v) => v.state === "loaded").map((v) => v.version);
        const moving = versions.filter((v) => v.state === "loading" || v.state === "unloading").map((v) => `${v.version}:${v.state}`);
        if (moving.length) found.push(`${m.id}: versions mid-transition ${moving.join(", ")}`);
        if (m.state === "loaded") {
          if (session?.phase !== "ready") found.push(`${m.id}: loaded, but the runtime routes ${session ? `a ${session.phase} session` : "nothing"}`);
          else if (String(m.servingVersion) !== session.version) found.push(`${m.id}: serving version ${m.servingVersion}, runtime serves ${session.version}`);
          if (loaded.length !== 1 || loaded[0] !== m.servingVersion) found.push(`${m.id}: loaded versions [${loaded.join(",")}], serving ${m.servingVersion}`);
        } else {
          if (m.state !== "unloaded" && m.state !== "failed") found.push(`${m.id}: ${m.state} with no job running`);
          if (session) found.push(`${m.id}: ${m.state}, but the runtime routes version ${session.version}`);
          if (m.servingVersion !== null) found.push(`${m.id}: ${m.state} with serving version ${m.servingVersion}`);
          if (loaded.length) found.push(`${m.id}: ${m.state} with loaded versions [${loaded.join(",")}]`);
        }
        if (active === m.id && m.state !== "loaded") found.push(`${m.id}: active but ${m.state}`);
      }
      return found;
    },

    /** The end of a model's life: its registry rows go, and it stops being the active model. Runs in the caller's transaction. */
    forget(modelId: string): void {
      d.models.delete(modelId);
      d.settings.clearActiveModelIf(modelId);
    },

    /** Keeps the active model only if `stillComing` says it will be loaded again. */
    settleActiveModel(stillComing: (modelId: string) => boolean): void {
      const active = d.settings.activeModel();
      if (active && !stillComing(active)) d.settings.setActiveModel(null);
    },
  };
}
export type Lifecycle = ReturnType<typeof createLifecycle>;
