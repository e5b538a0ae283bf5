// Builds the running service from a Config: database, recovery, runtime, job
// loop and HTTP app. main.ts calls it; tests call it with temp dirs.
import { closeSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createTokenVerifier, resolveAuthSource, type TokenVerifier } from "./auth";
import type { AuthSource, Config } from "./config";
import type { Deps } from "./context";
import { holdLock, openDatabase, type Db } from "./db/driver";
import { unlessStorageFails } from "./db/storage";
import type { AppError } from "./errors";
import { createAuditRepo } from "./db/audit.repo";
import { createEventsRepo } from "./db/events.repo";
import { createJobsRepo } from "./db/jobs.repo";
import { migrate } from "./db/migrations";
import { createModelsRepo } from "./db/models.repo";
import { createSettingsRepo } from "./db/settings.repo";
import { createApp } from "./http/app";
import { demoModelPath } from "./platform/assets";
import { jobSteps } from "./jobs/execute";
import { startJobLoop, type JobLoop } from "./jobs/loop";
import { createJobNotifier } from "./jobs/notifier";
import { recover } from "./jobs/recovery";
import { createLifecycle, type Lifecycle } from "./lifecycle/lifecycle";
import { memoryNow } from "./lifecycle/memory";
import { budgetBytes, formatBytes } from "./units";
import type { Logger } from "./log";
import { JsonCodec } from "./runtime/json-codec";
import { ModelRuntime } from "./runtime/model-runtime";
import { availableProviders, prepareNativeRuntime } from "./runtime/native";
import { startExpiry } from "./services/expiry.service";
import { loadOnStart, startupModels, startupModelsServe } from "./services/startup.service";
import { createMetrics } from "./services/metrics.service";
import { SystemSharedMemory } from "./services/shared-memory";
import { createInferenceStats } from "./services/stats.service";
import { installDemoModel, scanModelDir } from "./services/models.service";

export async function openStore(config: Config): Promise<Db> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const db = await openDatabase(config.dbPath);
  try {
    migrate(db);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

export interface Service {
  deps: Deps;
  app: ReturnType<typeof createApp>;
  loop: JobLoop;
  auth: AuthSource;
  verify: TokenVerifier;
  /** False until the models MODELD_LOAD_ON_START names serve. */
  isReady(): boolean;
  /** Stops the loop, releases every session and closes the database. */
  close(): Promise<void>;
}

type ServiceOptions = { isDraining?: () => boolean };

/**
 * One server per data dir: two would each take the other's sessions for gone
 * (recovery at start resets what claims one) and run each other's jobs.
 */
async function lockDataDir(config: Config): Promise<() => void> {
  const path = join(config.dataDir, "modeld.lock");
  try {
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
    // Opened for writing once, so a read-only or foreign dir is said plainly: SQLite's
    // own words for it are "unable to open database file".
    closeSync(openSync(path, "a", 0o600));
  } catch (err) {
    throw new Error(`the data dir ${config.dataDir} (MODELD_DATA_DIR) must be a writable directory: ${(err as Error).message}`);
  }
  const unlock = await holdLock(path);
  if (!unlock) throw new Error(`another modeld is serving from ${config.dataDir} (it holds ${path}); stop it first, or give this one a MODELD_DATA_DIR of its own`);
  return unlock;
}

export async function startService(config: Config, log: Logger, opts: ServiceOptions = {}): Promise<Service> {
  const unlock = await lockDataDir(config);
  let db: Db | undefined;
  try {
    db = await openStore(config);
    const service = await serviceOn(db, config, log, opts);
    const close = service.close;
    return {
      ...service,
      async close() {
        await close();
        unlock();
      },
    };
  } catch (err) {
    // A start that fails (bad auth settings, a full disk) leaves no file open or locked behind it.
    db?.close();
    unlock();
    throw err;
  }
}

/** A cgroup limit is where the OOM killer strikes; a budget above it does not keep loads under it. */
function logMemoryLimit(config: Config, log: Logger): void {
  const { limit } = memoryNow();
  if (!limit.cgroup) return;
  const budget = config.memory.budget ? budgetBytes(config.memory.budget, limit.bytes) : undefined;
  log.info("memory limited by a cgroup", { cgroup: limit.cgroup, limitBytes: limit.bytes, ...(budget ? { budgetBytes: budget } : {}) });
  if (budget && budget > limit.bytes) {
    log.warn(`MODELD_MEMORY_BUDGET (${formatBytes(budget)}) is above the ${formatBytes(limit.bytes)} memory limit of cgroup ${limit.cgroup}: loads within the budget can still meet the OOM killer`);
  }
}

async function serviceOn(db: Db, config: Config, log: Logger, opts: ServiceOptions): Promise<Service> {
  const auth = resolveAuthSource(config);
  const verify = await createTokenVerifier(auth, config.auth, log);
  const native = prepareNativeRuntime({ ortDir: config.runtime.ortDir, cacheDir: config.cacheDir });
  const providers = availableProviders(native.libDir);
  log.info("onnx runtime ready", { source: native.source, libDir: native.libDir, providers });
  logMemoryLimit(config, log);

  const models = createModelsRepo(db);
  const jobs = createJobsRepo(db);
  const settings = createSettingsRepo(db);
  // The runtime reports crashes to the lifecycle, which is built on the runtime.
  let lifecycle: Lifecycle | undefined;
  const runtime = new ModelRuntime({ maxQueuePerModel: config.runtime.maxQueuePerModel, spinUs: config.runtime.spinUs, onCrash: (report) => lifecycle?.workerCrashed(report) });
  lifecycle = createLifecycle({ config, db, models, settings, runtime, availableProviders: providers, log });
  const base = { config, db, models, jobs, settings, audit: createAuditRepo(db), events: createEventsRepo(db), runtime, lifecycle, native, notifier: createJobNotifier(), stats: createInferenceStats(), log, availableProviders: providers, jsonCodec: new JsonCodec(), shm: new SystemSharedMemory({ allowed: config.allowClientShm }) };

  if (config.demoModel && config.modelDirIsDefault) {
    if (await installDemoModel(config.modelDir, readFileSync(demoModelPath()))) log.info("installed the demo model", { modelDir: config.modelDir });
  }
  try {
    mkdirSync(config.modelDir, { recursive: true });
  } catch (err) {
    throw new Error(`the model dir ${config.modelDir} (MODELD_MODEL_DIR) must be a directory: ${(err as Error).message}`);
  }
  const scanned = await scanModelDir(base);
  if (scanned.added.length || scanned.updated.length) log.info("scanned the model dir", { added: scanned.added, updated: scanned.updated });
  recover(base);
  const loadedAtStart = startupModels(base);

  const loop = startJobLoop(jobSteps(base), { concurrency: config.jobs.concurrency, pollMs: config.jobs.pollMs, log });
  const deps: Deps = { ...base, wake: loop.wake, metrics: createMetrics(base) };
  loadOnStart(loadedAtStart, deps);
  const stopExpiry = startExpiry(deps);
  const isReady = () => startupModelsServe(loadedAtStart, deps);
  const app = createApp(deps, verify, { ...opts, isReady });
  return {
    deps,
    app,
    loop,
    auth,
    verify,
    isReady,
    async close() {
      // Queued jobs stay pending for the next start; running ones get the shutdown bound,
      // and any still running after it are recorded as interrupted now rather than at the next start.
      stopExpiry();
      await loop.stop(config.shutdownTimeoutMs);
      // On a full or failed disk neither write can be made, and the sessions are released all the same;
      // the next start records the interrupted jobs, and SQLite replays the WAL.
      const unwritten = (what: string) => (err: AppError) => log.warn(`${what} not written`, { error: err.message });
      unlessStorageFails(() => {
        const interrupted = jobs.failInterrupted();
        if (interrupted.length) log.warn("jobs interrupted by shutdown", { jobs: interrupted.map((j) => j.id) });
      }, unwritten("jobs interrupted by shutdown"));
      await runtime.shutdown(Math.min(config.jobs.unloadTimeoutMs, config.shutdownTimeoutMs));
      base.jsonCodec.close();
      await base.shm.close();
      unlessStorageFails(() => db.exec("PRAGMA wal_checkpoint(TRUNCATE)"), unwritten("the WAL checkpoint"));
      db.close();
    },
  };
}
