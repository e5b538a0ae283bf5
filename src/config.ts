// Every setting comes from the environment (or the matching CLI flag) and is
// parsed here, once. Nothing else reads process.env.
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { z } from "zod";
import { KEEP_ALIVE_PATTERN, parseBudget, parseKeepAlive, type Budget } from "./units";

const bool = z
  .enum(["true", "false", "1", "0", "yes", "no", "on", "off"])
  .transform((v) => ["true", "1", "yes", "on"].includes(v));

const ms = (def: number) => z.coerce.number().int().min(1).max(24 * 3600 * 1000).default(def);

/** Each key is an environment variable; `--kebab-case` of the part after MODELD_ is its CLI flag. */
export const envSchema = z.object({
  MODELD_HOST: z.string().min(1).default("127.0.0.1"),
  MODELD_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  MODELD_DATA_DIR: z.string().min(1).optional(),
  MODELD_MODEL_DIR: z.string().min(1).optional(),
  MODELD_CACHE_DIR: z.string().min(1).optional(),
  MODELD_JWT_SECRET: z
    .string()
    .refine((s) => Buffer.byteLength(s) >= 32, "must be at least 32 bytes")
    .optional(),
  MODELD_JWKS_URL: z.url().optional(),
  MODELD_JWKS_FILE: z.string().min(1).optional(),
  MODELD_JWT_PUBLIC_KEY: z.string().min(1).optional(),
  MODELD_JWT_ALG: z.enum(["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]).default("RS256"),
  MODELD_JWT_ISSUER: z.string().min(1).optional(),
  MODELD_JWT_AUDIENCE: z.string().min(1).optional(),
  MODELD_ROLE_CLAIM: z.string().min(1).default("role"),
  MODELD_ADMIN_ROLE: z.string().min(1).default("admin"),
  MODELD_INFER_ROLE: z.string().min(1).default("infer"),
  MODELD_PUBLIC_INFERENCE: bool.default(false),
  MODELD_METRICS_ROLE: z.string().min(1).default("metrics"),
  MODELD_METRICS_PUBLIC: bool.default(false),
  MODELD_METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  MODELD_GRPC_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  MODELD_ALLOW_CLIENT_SHM: bool.default(false),
  MODELD_LOAD_TIMEOUT_MS: ms(120_000),
  MODELD_UNLOAD_TIMEOUT_MS: ms(30_000),
  MODELD_POLL_MS: ms(1000),
  MODELD_SHUTDOWN_TIMEOUT_MS: ms(10_000),
  MODELD_JOB_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
  MODELD_MAX_BODY_BYTES: z.coerce.number().int().min(1024).default(64 * 1024 * 1024),
  MODELD_MAX_TENSOR_ELEMENTS: z.coerce.number().int().min(1).default(64 * 1024 * 1024),
  MODELD_MAX_QUEUE_PER_MODEL: z.coerce.number().int().min(1).default(256),
  MODELD_SPIN_US: z.coerce.number().int().min(0).max(10_000).default(500),
  MODELD_MAX_PENDING_JOBS: z.coerce.number().int().min(1).default(1000),
  MODELD_JOB_RETENTION_HOURS: z.coerce.number().min(0).default(24 * 7),
  MODELD_EXECUTION_PROVIDERS: z
    .string()
    .default("cpu")
    .transform((s) => s.split(",").map((p) => p.trim()).filter(Boolean))
    .pipe(z.array(z.enum(["cuda", "cpu"])).min(1)),
  MODELD_ALLOW_CPU_FALLBACK: bool.default(true),
  MODELD_ORT_DIR: z.string().min(1).optional(),
  MODELD_RESTORE: bool.default(true),
  MODELD_DEMO_MODEL: bool.default(true),
  MODELD_VERIFY_CHECKSUM: bool.default(true),
  MODELD_MEMORY_BUDGET: z
    .string()
    .transform((s, ctx) => parseBudget(s) ?? (ctx.addIssue({ code: "custom", message: "bytes (e.g. 8GiB, 512MiB, 1073741824) or a share of the memory the process may use (e.g. 75%)" }), z.NEVER))
    .optional(),
  MODELD_KEEP_ALIVE: z.string().regex(KEEP_ALIVE_PATTERN, "-1 (forever), 0, or a duration like 30s, 5m, 1h").default("-1"),
  MODELD_LOAD_ON_DEMAND: bool.default(false),
  MODELD_LOAD_ON_START: z
    .string()
    .default("")
    .transform((s) => (s.trim() === "*" ? ("*" as const) : s.split(/[\s,]+/).filter(Boolean)))
    .pipe(z.union([z.literal("*"), z.array(z.string())])),
  MODELD_ON_DEMAND_WAIT_MS: ms(30_000),
  MODELD_LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  // Fault injection for the crash tests: a serving worker's death has no other trigger short of a native fault, which ends the process.
  MODELD_FAULT_WORKER_CRASH_AFTER_RUNS: z.coerce.number().int().min(0).optional(),
});

export type Env = z.infer<typeof envSchema>;
export type AuthSource =
  | { kind: "secret"; secret: string; generated: boolean }
  | { kind: "jwks-url"; url: string }
  | { kind: "jwks-file"; path: string }
  | { kind: "public-key"; pem: string; alg: string };

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  modelDir: string;
  /** True when the model dir was not set, so the demo model may be placed there. */
  modelDirIsDefault: boolean;
  cacheDir: string;
  dbPath: string;
  auth: {
    /** Resolved later for the generated secret (see ensureSecret). */
    source: AuthSource | { kind: "generate"; path: string };
    issuer?: string;
    audience?: string;
    roleClaim: string;
    adminRole: string;
    inferRole: string;
    /** May read /metrics (admins may too). */
    metricsRole: string;
    publicInference: boolean;
  };
  /** The Open Inference Protocol over gRPC on this port; absent: off. */
  grpcPort?: number;
  /** Triton's system shared memory regions may be registered (MODELD_ALLOW_CLIENT_SHM). */
  allowClientShm: boolean;
  metrics: {
    /** /metrics without a token on the API port. */
    public: boolean;
    /** A second listener serving only /metrics, without auth, as Triton's 8002; absent: none. */
    port?: number;
  };
  jobs: {
    pollMs: number;
    loadTimeoutMs: number;
    unloadTimeoutMs: number;
    concurrency: number;
    maxPending: number;
    retentionHours: number;
  };
  runtime: {
    executionProviders: ("cuda" | "cpu")[];
    allowCpuFallback: boolean;
    ortDir?: string;
    maxTensorElements: number;
    maxQueuePerModel: number;
    /**
     * How long a session worker that answered a lone request stays awake for the next one,
     * and the bound (with ANSWER_WAIT_MS) of the HTTP thread's wait for a lone answer; 0: nothing spins.
     */
    spinUs: number;
    verifyChecksum: boolean;
    /** Fault injection: each session worker dies (an uncaught error in its thread) on receiving its run number N+1. */
    faultWorkerCrashAfterRuns?: number;
  };
  memory: {
    /** Loaded versions' footprints may add up to this; absent: no budget, nothing is evicted. */
    budget?: Budget;
    /** How long an idle model stays loaded unless its own keepAlive says otherwise; -1 forever. */
    keepAliveMs: number;
    loadOnDemand: boolean;
    onDemandWaitMs: number;
  };
  /** Models loaded at start, as Triton's --load-model; readiness waits for them. `*`: every registered model. */
  loadOnStart: "*" | string[];
  shutdownTimeoutMs: number;
  maxBodyBytes: number;
  restore: boolean;
  demoModel: boolean;
  logLevel: "debug" | "info" | "warn" | "error";
}

export class ConfigError extends Error {}

function defaultDataDir(env: NodeJS.ProcessEnv): string {
  // systemd's StateDirectory= sets STATE_DIRECTORY; outside systemd keep data next to the user.
  return env.STATE_DIRECTORY?.split(":")[0] ?? resolve("modeld-data");
}

function defaultCacheDir(env: NodeJS.ProcessEnv): string {
  if (env.CACHE_DIRECTORY) return env.CACHE_DIRECTORY.split(":")[0]!;
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, "modeld");
  return join(homedir(), ".cache", "modeld");
}

function pickAuthSource(e: Env, dataDir: string): Config["auth"]["source"] {
  const set = (
    [
      ["MODELD_JWT_SECRET", e.MODELD_JWT_SECRET],
      ["MODELD_JWKS_URL", e.MODELD_JWKS_URL],
      ["MODELD_JWKS_FILE", e.MODELD_JWKS_FILE],
      ["MODELD_JWT_PUBLIC_KEY", e.MODELD_JWT_PUBLIC_KEY],
    ] as const
  ).filter(([, v]) => v !== undefined);
  if (set.length > 1) {
    throw new ConfigError(`set only one of ${set.map(([k]) => k).join(", ")}: they are alternative ways to verify tokens`);
  }
  if (e.MODELD_JWT_SECRET) return { kind: "secret", secret: e.MODELD_JWT_SECRET, generated: false };
  if (e.MODELD_JWKS_URL) return { kind: "jwks-url", url: e.MODELD_JWKS_URL };
  if (e.MODELD_JWKS_FILE) return { kind: "jwks-file", path: resolve(e.MODELD_JWKS_FILE) };
  if (e.MODELD_JWT_PUBLIC_KEY) return { kind: "public-key", pem: e.MODELD_JWT_PUBLIC_KEY, alg: e.MODELD_JWT_ALG };
  return { kind: "generate", path: join(dataDir, "jwt-secret") };
}

/** Parses the environment; throws ConfigError naming each bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv): Config {
  const raw = Object.fromEntries(
    Object.entries(env).filter(([k, v]) => k.startsWith("MODELD_") && v !== undefined && v !== ""),
  );
  const unknown = Object.keys(raw).filter((k) => !(k in envSchema.shape));
  if (unknown.length) throw new ConfigError(`unknown setting ${unknown.join(", ")}`);
  const parsed = envSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${String(i.path[0] ?? "config")}: ${i.message}`);
    throw new ConfigError(lines.join("; "));
  }
  const e = parsed.data;
  const dataDir = resolve(e.MODELD_DATA_DIR ?? defaultDataDir(env));
  const modelDir = resolve(e.MODELD_MODEL_DIR ?? join(dataDir, "models"));
  return {
    host: e.MODELD_HOST,
    port: e.MODELD_PORT,
    dataDir,
    modelDir,
    modelDirIsDefault: e.MODELD_MODEL_DIR === undefined,
    cacheDir: resolve(e.MODELD_CACHE_DIR ?? defaultCacheDir(env)),
    dbPath: join(dataDir, "modeld.sqlite"),
    auth: {
      source: pickAuthSource(e, dataDir),
      issuer: e.MODELD_JWT_ISSUER,
      audience: e.MODELD_JWT_AUDIENCE,
      roleClaim: e.MODELD_ROLE_CLAIM,
      adminRole: e.MODELD_ADMIN_ROLE,
      inferRole: e.MODELD_INFER_ROLE,
      metricsRole: e.MODELD_METRICS_ROLE,
      publicInference: e.MODELD_PUBLIC_INFERENCE,
    },
    metrics: { public: e.MODELD_METRICS_PUBLIC, port: e.MODELD_METRICS_PORT },
    grpcPort: e.MODELD_GRPC_PORT,
    allowClientShm: e.MODELD_ALLOW_CLIENT_SHM,
    jobs: {
      pollMs: e.MODELD_POLL_MS,
      loadTimeoutMs: e.MODELD_LOAD_TIMEOUT_MS,
      unloadTimeoutMs: e.MODELD_UNLOAD_TIMEOUT_MS,
      concurrency: e.MODELD_JOB_CONCURRENCY,
      maxPending: e.MODELD_MAX_PENDING_JOBS,
      retentionHours: e.MODELD_JOB_RETENTION_HOURS,
    },
    runtime: {
      executionProviders: e.MODELD_EXECUTION_PROVIDERS,
      allowCpuFallback: e.MODELD_ALLOW_CPU_FALLBACK,
      ortDir: e.MODELD_ORT_DIR ? resolve(e.MODELD_ORT_DIR) : undefined,
      maxTensorElements: e.MODELD_MAX_TENSOR_ELEMENTS,
      maxQueuePerModel: e.MODELD_MAX_QUEUE_PER_MODEL,
      spinUs: e.MODELD_SPIN_US,
      verifyChecksum: e.MODELD_VERIFY_CHECKSUM,
      faultWorkerCrashAfterRuns: e.MODELD_FAULT_WORKER_CRASH_AFTER_RUNS,
    },
    memory: {
      budget: e.MODELD_MEMORY_BUDGET,
      keepAliveMs: parseKeepAlive(e.MODELD_KEEP_ALIVE),
      loadOnDemand: e.MODELD_LOAD_ON_DEMAND,
      onDemandWaitMs: e.MODELD_ON_DEMAND_WAIT_MS,
    },
    loadOnStart: e.MODELD_LOAD_ON_START,
    shutdownTimeoutMs: e.MODELD_SHUTDOWN_TIMEOUT_MS,
    maxBodyBytes: e.MODELD_MAX_BODY_BYTES,
    restore: e.MODELD_RESTORE,
    demoModel: e.MODELD_DEMO_MODEL,
    logLevel: e.MODELD_LOG_LEVEL,
  };
}

/** `--load-timeout-ms` ↔ MODELD_LOAD_TIMEOUT_MS */
export function flagToEnvName(flag: string): string | undefined {
  const name = "MODELD_" + flag.replace(/^--/, "").replace(/-/g, "_").toUpperCase();
  return name in envSchema.shape ? name : undefined;
}

export function envNameToFlag(name: string): string {
  return "--" + name.replace(/^MODELD_/, "").toLowerCase().replace(/_/g, "-");
}
