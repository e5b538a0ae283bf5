// The one typed bundle of dependencies handed to services, handlers and the job loop.
import type { Config } from "./config";
import type { AuditRepo } from "./db/audit.repo";
import type { Db } from "./db/driver";
import type { EventsRepo } from "./db/events.repo";
import type { JobsRepo } from "./db/jobs.repo";
import type { ModelsRepo } from "./db/models.repo";
import type { SettingsRepo } from "./db/settings.repo";
import type { JobNotifier } from "./jobs/notifier";
import type { Lifecycle } from "./lifecycle/lifecycle";
import type { Logger } from "./log";
import type { JsonCodec } from "./runtime/json-codec";
import type { ModelRuntime } from "./runtime/model-runtime";
import type { NativeRuntime } from "./runtime/native";
import type { Metrics } from "./services/metrics.service";
import type { SystemSharedMemory } from "./services/shared-memory";
import type { InferenceStats } from "./services/stats.service";

export interface Deps {
  config: Config;
  db: Db;
  models: ModelsRepo;
  jobs: JobsRepo;
  settings: SettingsRepo;
  audit: AuditRepo;
  events: EventsRepo;
  runtime: ModelRuntime;
  /** The only writer of model and version state. */
  lifecycle: Lifecycle;
  native: NativeRuntime;
  notifier: JobNotifier;
  /** Per-version inference statistics since the start, for /v2 stats and /metrics. */
  stats: InferenceStats;
  metrics: Metrics;
  log: Logger;
  /** Wakes the job loop so a new job is picked up in milliseconds, not a poll period. */
  wake: () => void;
  /** Providers whose libraries were found at startup. */
  availableProviders: string[];
  /** Parses large JSON inference bodies and writes large JSON outputs off the HTTP thread. */
  jsonCodec: JsonCodec;
  /** Triton's system shared memory regions, registered by clients on this host. */
  shm: SystemSharedMemory;
}
