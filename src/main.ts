#!/usr/bin/env bun
// modeld's entry: parses the command line, loads the config and runs a command.
import { existsSync, rmSync } from "node:fs";
import { mintToken, parseTtl, resolveAuthSource } from "./auth";
import { ConfigError, envNameToFlag, envSchema, flagToEnvName, loadConfig, type Config } from "./config";
import { openDatabase } from "./db/driver";
import { createModelsRepo } from "./db/models.repo";
import { isStorageFull } from "./errors";
import { VERSION } from "./http/app";
import { createMetricsApp } from "./http/metrics.handlers";
import { createLogger } from "./log";
import { isCompiledBinary } from "./platform/assets";
import { escapeNoexecTmp } from "./platform/noexec-tmp";
import { listen } from "./platform/serve";
import { openStore, startService } from "./server";

/** Each setting's flag beside its variable, the column as wide as the longest flag. */
function settingsTable(): string {
  const flags = Object.keys(envSchema.shape).map((k) => [envNameToFlag(k), k] as const);
  const width = Math.max(...flags.map(([f]) => f.length));
  return flags.map(([flag, env]) => `  ${flag.padEnd(width)}  ${env}`).join("\n");
}

const USAGE = `modeld ${VERSION}: an ONNX model server

Usage:
  modeld [serve] [flags]              run the server (default)
  modeld token --sub NAME --role admin|infer [--ttl 1h]
                                      print a token signed with the configured secret
  modeld migrate                      apply database migrations and exit
  modeld backup FILE                  write a consistent copy of the database to FILE
  modeld models list                  print the registered models, one line per version:
                                      id, version, state, serving, size, path
  modeld --version | --help

Every setting is an environment variable and a flag:
${settingsTable()}
`;

class UsageError extends Error {}

interface Cli {
  command: string[];
  flags: Record<string, string>;
  env: Record<string, string>;
}

const COMMAND_FLAGS = new Set(["--sub", "--role", "--ttl"]);

export function parseArgs(argv: string[]): Cli {
  const cli: Cli = { command: [], flags: {}, env: {} };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) {
      cli.command.push(arg);
      continue;
    }
    if (arg === "--help" || arg === "--version") {
      cli.flags[arg] = "true";
      continue;
    }
    const [name, inline] = arg.split(/=(.*)/s, 2) as [string, string | undefined];
    const value = inline ?? argv[++i];
    if (value === undefined) throw new UsageError(`${name} needs a value`);
    const envName = flagToEnvName(name);
    if (envName) cli.env[envName] = value;
    else if (COMMAND_FLAGS.has(name)) cli.flags[name] = value;
    else throw new UsageError(`unknown flag ${name}`);
  }
  return cli;
}

const SPARE_AFTER_LISTEN_MS = 250;

async function serve(config: Config): Promise<void> {
  const log = createLogger(config.logLevel, { service: "modeld" });
  if (isCompiledBinary()) escapeNoexecTmp(config.cacheDir, (msg) => log.warn(msg));
  let draining = false;
  const service = await startService(config, log, { isDraining: () => draining });
  const server = await listen({ hostname: config.host, port: config.port, fetch: service.app.fetch });
  const metricsServer =
    config.metrics.port === undefined ? undefined : await listen({ hostname: config.host, port: config.metrics.port, fetch: createMetricsApp(service.deps).fetch });
  const grpcServer =
    config.grpcPort === undefined
      ? undefined
      : // Imported only when asked for: grpc-js adds tens of ms to every start.
        await (await import("./grpc/server")).startGrpcServer(service.deps, service.verify, { host: config.host, port: config.grpcPort, version: VERSION, isDraining: () => draining, isReady: service.isReady });
  const url = `http://${config.host.includes(":") ? `[${config.host}]` : config.host}:${server.port}`;
  const tokenHint =
    service.auth.kind === "secret"
      ? `modeld token --sub you --role admin   (or: npm run --silent token -- --sub you --role admin)`
      : "tokens come from your identity provider (JWKS or public key configured)";
  process.stderr.write(
    `\nmodeld ${VERSION} listening on ${url}\n  API docs:  ${url}/docs\n  data dir:  ${config.dataDir}\n  model dir: ${config.modelDir}\n  token:     ${tokenHint}\n\n`,
  );
  log.info("listening", { url, dataDir: config.dataDir, modelDir: config.modelDir, auth: service.auth.kind, ...(metricsServer ? { metricsPort: metricsServer.port } : {}), ...(grpcServer ? { grpcPort: grpcServer.port } : {}) });
  // A thread with onnxruntime-node imported and warm, ready for the first load: a small
  // model's first load job took ~140 ms without it, ~30 ms (as later ones) with it. Started
  // a moment after listening, because started at once it slowed the cold start to ready by ~8 ms.
  setTimeout(() => void service.deps.runtime.ensureSpare(), SPARE_AFTER_LISTEN_MS);

  let stopping: Promise<void> | undefined;
  const shutdown = (signal: string) => {
    stopping ??= (async () => {
      draining = true;
      log.info("shutting down", { signal });
      // Stop accepting, then give in-flight requests the bound to finish.
      void metricsServer?.stop(true);
      const closed = Promise.all([server.stop(false), grpcServer?.stop(config.shutdownTimeoutMs)]);
      await Promise.race([closed, new Promise((r) => setTimeout(r, config.shutdownTimeoutMs))]);
      await service.close();
      void server.stop(true);
      log.info("stopped");
      process.exit(0);
    })();
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
  // A closed terminal (or a habitual `kill -HUP` for a reload modeld does not have) ended the
  // process on the spot, cutting requests off and leaving jobs running; it stops like SIGTERM.
  process.on("SIGHUP", () => shutdown("SIGHUP"));
}

/**
 * For the commands that read what a server wrote. Opening the store would create a
 * new, empty database, so a mistyped MODELD_DATA_DIR (or a cron job without the
 * service's environment) backed up or listed nothing, and said it succeeded.
 */
function requireDatabase(config: Config): void {
  if (!existsSync(config.dbPath)) {
    throw new Error(`there is no database at ${config.dbPath}: is ${config.dataDir} (MODELD_DATA_DIR) the data dir modeld serves from?`);
  }
}

/** A copy of the database as it is: no migration, so a newer modeld's backup leaves an older server's schema alone. */
async function backup(config: Config, file: string): Promise<void> {
  requireDatabase(config);
  if (existsSync(file)) throw new Error(`cannot write the backup ${file}: it already exists, and a backup never overwrites a file`);
  const db = await openDatabase(config.dbPath);
  try {
    db.prepare("VACUUM INTO @file").run({ file });
  } catch (err) {
    if (!isStorageFull(err)) throw err;
    // The disk that filled is the copy's: say so, and leave no partial copy behind.
    rmSync(file, { force: true });
    throw new Error(`cannot write the backup ${file}: the disk is full there; ${config.dbPath} is unchanged`);
  } finally {
    db.close();
  }
  process.stderr.write(`backed up ${config.dbPath} to ${file}\n`);
}

async function token(config: Config, flags: Record<string, string>): Promise<void> {
  const sub = flags["--sub"];
  const role = flags["--role"];
  if (!sub || !role) throw new UsageError("token needs --sub NAME and --role ROLE");
  const source = resolveAuthSource(config);
  if (source.kind !== "secret") {
    throw new Error(`auth is configured with ${source.kind}: modeld cannot mint tokens; get them from your identity provider`);
  }
  const jwt = await mintToken(source.secret, {
    sub,
    role,
    ttlSeconds: parseTtl(flags["--ttl"] ?? "1h"),
    issuer: config.auth.issuer,
    audience: config.auth.audience,
    roleClaim: config.auth.roleClaim,
  });
  process.stdout.write(jwt + "\n");
}

async function run(argv: string[]): Promise<number> {
  const cli = parseArgs(argv);
  if (cli.flags["--help"]) return process.stdout.write(USAGE), 0;
  if (cli.flags["--version"]) return process.stdout.write(`modeld ${VERSION}\n`), 0;
  const config = loadConfig({ ...process.env, ...cli.env });
  const [cmd = "serve", ...rest] = cli.command;
  switch (`${cmd} ${rest.join(" ")}`.trim()) {
    case "serve":
      await serve(config);
      return -1; // keeps running
    case "token":
      await token(config, cli.flags);
      return 0;
    case "migrate": {
      const db = await openStore(config);
      db.close();
      process.stderr.write(`database ${config.dbPath} is up to date\n`);
      return 0;
    }
    case "models list": {
      requireDatabase(config);
      const db = await openStore(config);
      const models = createModelsRepo(db);
      for (const m of models.list()) {
        for (const v of models.versions(m.id)) {
          const serving = v.version === m.servingVersion ? "serving" : "-";
          process.stdout.write(`${m.id}\t${v.version}\t${v.state}\t${serving}\t${v.sizeBytes}\t${v.path}\n`);
        }
      }
      db.close();
      return 0;
    }
    default:
      if (cmd === "backup" && rest.length === 1) {
        await backup(config, rest[0]!);
        return 0;
      }
      throw new UsageError(`unknown command: ${cli.command.join(" ")}`);
  }
}

if (import.meta.main) {
  run(process.argv.slice(2)).then(
    (code) => {
      if (code >= 0) process.exit(code);
    },
    (err) => {
      if (err instanceof UsageError) {
        process.stderr.write(`modeld: ${err.message}\n\n${USAGE}`);
        process.exit(2);
      }
      process.stderr.write(`modeld: ${err instanceof ConfigError ? "bad configuration: " : ""}${err.message}\n`);
      process.exit(1);
    },
  );
}
