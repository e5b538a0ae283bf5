// The registry: models, their numbered versions and their settings. Versions
// come from the model dir (scanned at start and on rescan) or from the API.
// Changing what is loaded is the lifecycle's business, reached through jobs.
import type { Dirent } from "node:fs";
import { readdir, stat, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { toWallClock } from "../clock";
import type { Deps } from "../context";
import type { ModelRecord, VersionRecord } from "../db/models.repo";
import { AppError } from "../errors";
import { currentIdentity, fingerprint, fingerprintWith, resolveModelPath } from "../lifecycle/model-files";
import { withHashWorker } from "../runtime/sha256";
import { elementCount } from "../runtime/tensors";
import { applyPatch, withDefaults, type ModelSettingsPatch } from "../model-settings";
import { expiresAt } from "./expiry.service";

export const MODEL_ID_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
/** A version is a positive integer, written as a string (Triton's layout names folders this way). */
export const VERSION_PATTERN = /^[1-9][0-9]{0,8}$/;

/** "model m" or "model m version 2", as messages name them. */
export const modelRef = (id: string, version?: string) => (version === undefined ? `model ${id}` : `model ${id} version ${version}`);

type ModelDeps = Pick<Deps, "db" | "models" | "jobs" | "settings" | "config" | "log">;

export type VersionView = Pick<VersionRecord, "state" | "path" | "sizeBytes" | "sha256" | "lastError" | "createdAt" | "loadedAt"> & { version: string };

export type ModelView = Pick<ModelRecord, "id" | "source" | "state" | "lastError" | "createdAt" | "updatedAt" | "loadedAt"> &
  Pick<VersionRecord, "path" | "sizeBytes" | "sha256" | "inputs" | "outputs"> &
  ReturnType<typeof withDefaults> & {
    active: boolean;
    versions: VersionView[];
    servingVersion: string | null;
    memoryBytes: number | null;
    estimatedBytes: number | null;
    lastUsedAt: string | null;
    expiresAt: string | null;
  };

type ViewDeps = Pick<Deps, "models" | "settings" | "runtime" | "lifecycle" | "config">;

function versionView(v: VersionRecord): VersionView {
  return { version: String(v.version), state: v.state, path: v.path, sizeBytes: v.sizeBytes, sha256: v.sha256, lastError: v.lastError, createdAt: v.createdAt, loadedAt: v.loadedAt };
}

/**
 * The public shape. File facts and I/O describe the version serving, or the
 * newest one when none serves; each setting is a top-level field.
 */
/** The version a model is described by: the one serving, else the newest. */
export function currentVersion(m: ModelRecord, versions: VersionRecord[]): VersionRecord | undefined {
  return versions.find((v) => v.version === m.servingVersion) ?? versions.at(-1);
}

/** What every model's view reads, read once for a list of them. */
interface ViewContext {
  versions: VersionRecord[];
  activeModel: string | null;
}

export function toView(m: ModelRecord, d: ViewDeps, ctx: ViewContext = { versions: d.models.versions(m.id), activeModel: d.settings.activeModel() }): ModelView {
  const { versions } = ctx;
  const serving = versions.find((v) => v.version === m.servingVersion);
  const current = currentVersion(m, versions);
  const session = d.runtime.get(m.id);
  const wall = toWallClock();
  const at = (monotonic: number | null | undefined) => (monotonic == null ? null : new Date(wall(monotonic)).toISOString());
  return {
    id: m.id,
    path: current?.path ?? "",
    source: m.source,
    state: m.state,
    active: ctx.activeModel === m.id,
    sizeBytes: current?.sizeBytes ?? 0,
    sha256: current?.sha256 ?? "",
    lastError: m.lastError,
    inputs: current?.inputs ?? null,
    outputs: current?.outputs ?? null,
    ...withDefaults(m.settings),
    versions: versions.map(versionView),
    servingVersion: m.servingVersion === null ? null : String(m.servingVersion),
    memoryBytes: serving?.memoryBytes ?? null,
    estimatedBytes: current ? d.lifecycle.estimatedBytes(current) : null,
    lastUsedAt: at(session?.lastUsedAt),
    expiresAt: at(expiresAt(m.id, d)),
    createdAt: m.createdAt,
    updatedAt: m.updatedAt,
    loadedAt: m.loadedAt,
  };
}

export function getModel(id: string, d: Pick<Deps, "models">): ModelRecord {
  const m = d.models.get(id);
  if (!m) throw new AppError("MODEL_NOT_FOUND", `no model ${id}`);
  return m;
}

/** A registered version of a model: 404 for an unknown model or version. */
export function getVersion(id: string, version: string, d: Pick<Deps, "models">): VersionRecord {
  getModel(id, d);
  const v = VERSION_PATTERN.test(version) ? d.models.version(id, Number(version)) : undefined;
  if (!v) throw new AppError("MODEL_VERSION_NOT_FOUND", `model ${id} has no version ${version}`);
  return v;
}

/** The version a load without one targets: the newest registered, even one that failed before. */
export function newestVersion(id: string, d: Pick<Deps, "models">): VersionRecord {
  const v = d.models.newestVersion(id);
  if (!v) throw new AppError("MODEL_VERSION_NOT_FOUND", `model ${id} has no registered version`);
  return v;
}

export function activeModelId(d: Pick<Deps, "settings">): string {
  const id = d.settings.activeModel();
  if (!id) throw new AppError("NO_ACTIVE_MODEL", "no model is active; load one first");
  return id;
}

export async function registerModel(input: { id: string; path: string; providers?: ("cuda" | "cpu")[] }, d: ModelDeps): Promise<ModelRecord> {
  if (d.models.get(input.id)) throw new AppError("MODEL_EXISTS", `model ${input.id} is already registered`);
  const file = await resolveModelPath(d.config.modelDir, input.path);
  const fp = await fingerprint(file.abs);
  return d.db.tx(() => {
    // Re-check inside the transaction: hashing yielded, so another request may have won.
    if (d.models.get(input.id)) throw new AppError("MODEL_EXISTS", `model ${input.id} is already registered`);
    const model = d.models.insert({ id: input.id, source: "api", settings: input.providers ? { providers: input.providers } : {} });
    d.models.insertVersion({ modelId: input.id, version: 1, path: file.rel, ...fp, source: "api" });
    return model;
  });
}

/** Registers a file as a new version of a model; the number defaults to the next one. */
export async function addVersion(id: string, input: { path: string; version?: string }, d: ModelDeps): Promise<ModelRecord> {
  getModel(id, d);
  const taken = (v: number) => d.models.version(id, v) !== undefined;
  const exists = (v: number) => new AppError("MODEL_VERSION_EXISTS", `model ${id} already has version ${v}`);
  if (input.version !== undefined && taken(Number(input.version))) throw exists(Number(input.version));
  const file = await resolveModelPath(d.config.modelDir, input.path);
  const fp = await fingerprint(file.abs);
  return d.db.tx(() => {
    const model = getModel(id, d);
    const version = input.version !== undefined ? Number(input.version) : (d.models.newestVersion(id)?.version ?? 0) + 1;
    if (taken(version)) throw exists(version);
    d.models.insertVersion({ modelId: id, version, path: file.rel, ...fp, source: "api" });
    return model;
  });
}

/**
 * Removes a version's registration (the file stays). Refused while it serves
 * or moves, while a load of it is queued, and for the model's last version.
 */
export function deleteVersion(id: string, version: string, d: Pick<Deps, "db" | "models" | "jobs">): void {
  d.db.tx(() => {
    const v = getVersion(id, version, d);
    if (v.state !== "unloaded" && v.state !== "failed") throw new AppError("MODEL_BUSY", `${modelRef(id, version)} is ${v.state}; unload it or swap to another version first`);
    if (d.jobs.unfinishedLoadOf(id, v.version)) throw new AppError("MODEL_BUSY", `${modelRef(id, version)} has a load queued`);
    if (d.models.versions(id).length === 1) throw new AppError("MODEL_BUSY", `version ${version} is the only version of model ${id}; delete the model instead`);
    d.models.deleteVersion(id, v.version);
  });
}

export function updateSettings(id: string, patch: ModelSettingsPatch, d: Pick<Deps, "db" | "models" | "config">): ModelRecord {
  for (const [input, shape] of Object.entries(patch.warmup?.shapes ?? {})) {
    // The bound inference inputs obey: a warmup tensor past it would hold its worker for minutes, or exhaust memory.
    try {
      elementCount(shape, d.config.runtime.maxTensorElements, `input ${input}'s warmup shape`);
    } catch (err) {
      throw new AppError("VALIDATION_ERROR", (err as Error).message);
    }
  }
  return d.db.tx(() => {
    const model = getModel(id, d);
    d.models.setSettings(id, applyPatch(model.settings, patch));
    return getModel(id, d);
  });
}

export function deleteModel(id: string, d: ModelDeps & Pick<Deps, "lifecycle" | "stats">): void {
  d.db.tx(() => {
    const m = getModel(id, d);
    if (m.state !== "unloaded" && m.state !== "failed") {
      throw new AppError("MODEL_BUSY", `model ${id} is ${m.state}; unload it first`);
    }
    if (d.jobs.latestUnfinished(id)) throw new AppError("MODEL_BUSY", `model ${id} has unfinished jobs`);
    d.lifecycle.forget(id);
  });
  d.stats.forget(id);
}

interface Found {
  id: string;
  version: number;
  /** Relative to the model dir. */
  rel: string;
}

const isFile = (p: string) => stat(p).then((s) => s.isFile(), () => false);

/**
 * The model dir's entries. A dir that is not there holds no models; one that
 * cannot be read fails the scan, so a rescan never answers "nothing new" for
 * a folder it could not look into.
 */
async function modelDirEntries(modelDir: string): Promise<Dirent[]> {
  try {
    return await readdir(modelDir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw new AppError("MODEL_DIR_UNREADABLE", `the model dir ${modelDir} (MODELD_MODEL_DIR) cannot be read: ${(err as Error).message}`);
  }
}

/** A model's folder: one that cannot be read is skipped, said in `skipped`, and the others are scanned. */
async function folderEntries(modelDir: string, rel: string, skipped: Skipped[]): Promise<Dirent[]> {
  try {
    return await readdir(join(modelDir, rel), { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // A symlink to a file, or a dangling one: not a model's folder.
    if (code !== "ENOTDIR" && code !== "ENOENT") skipped.push({ path: rel, reason: `the folder cannot be read: ${(err as Error).message}` });
    return [];
  }
}

/**
 * The model file in a folder: `model.onnx`, or Triton's form for a model of several
 * files (weights in external data files beside it), a folder `model.onnx` holding
 * `model.onnx`. Relative to the model dir.
 */
async function modelFileIn(modelDir: string, folder: string): Promise<string | undefined> {
  for (const rel of [join(folder, "model.onnx"), join(folder, "model.onnx", "model.onnx")]) {
    if (await isFile(join(modelDir, rel))) return rel;
  }
  return undefined;
}

/**
 * The model dir's layouts: `<id>.onnx` and `<id>/model.onnx` are version 1;
 * Triton's `<id>/<n>/model.onnx` is version n. Where numbered folders exist
 * they are the model's versions, as in Triton. Each `model.onnx` may also be
 * Triton's folder form (modelFileIn).
 */
async function discover(modelDir: string, skipped: Skipped[], only?: string): Promise<Found[]> {
  const found: Found[] = [];
  for (const e of await modelDirEntries(modelDir)) {
    if (only !== undefined && e.name !== only && e.name !== `${only}.onnx`) continue;
    if (e.name.endsWith(".onnx") && !e.isDirectory()) {
      found.push({ id: e.name.slice(0, -".onnx".length), version: 1, rel: e.name });
      continue;
    }
    if (!e.isDirectory() && !e.isSymbolicLink()) continue;
    const inside = await folderEntries(modelDir, e.name, skipped);
    const numbered = inside.filter((f) => VERSION_PATTERN.test(f.name) && (f.isDirectory() || f.isSymbolicLink()));
    const versions: Found[] = [];
    for (const n of numbered) {
      const rel = await modelFileIn(modelDir, join(e.name, n.name));
      if (rel) versions.push({ id: e.name, version: Number(n.name), rel });
      else skipped.push({ path: join(e.name, n.name), reason: "no model.onnx in this version folder, as a file or as a folder holding model.onnx (modeld does not read config.pbtxt, so a default_model_filename there is not followed)" });
    }
    const unversioned = versions.length ? undefined : await modelFileIn(modelDir, e.name);
    if (versions.length) found.push(...versions);
    else if (unversioned) found.push({ id: e.name, version: 1, rel: unversioned });
  }
  return found
    .filter((f) => {
      if (MODEL_ID_PATTERN.test(f.id)) return true;
      skipped.push({ path: f.rel, reason: `${JSON.stringify(f.id)} is not a valid model id: 1 to 64 lowercase letters, digits, ".", "_" or "-", starting with a letter or digit` });
      return false;
    })
    .sort((a, b) => (a.id === b.id ? a.version - b.version : a.id < b.id ? -1 : 1));
}

interface Skipped {
  /** Relative to the model dir. */
  path: string;
  reason: string;
}

export interface ScanReport {
  added: { id: string; version: string }[];
  updated: { id: string; version: string }[];
  skipped: Skipped[];
}

/**
 * Registers new model files and versions found in the model dir, and refreshes
 * the recorded facts of changed files whose version is not loaded. `forLoadOf`:
 * only that model's, for Triton's repository load, which reloads a serving
 * version's changed file itself, so that file is not reported as skipped (its
 * warning, logged just before the reload, said the opposite of what happened).
 * Hashing runs in a worker thread; the HTTP thread only stats files.
 */
export async function scanModelDir(d: ModelDeps, forLoadOf?: string): Promise<ScanReport> {
  const report: ScanReport = { added: [], updated: [], skipped: [] };
  const toHash: { id: string; version: number; file: { abs: string; rel: string } }[] = [];
  for (const f of await discover(d.config.modelDir, report.skipped, forLoadOf)) {
    let file;
    try {
      file = await resolveModelPath(d.config.modelDir, f.rel);
    } catch (err) {
      report.skipped.push({ path: f.rel, reason: (err as Error).message });
      continue;
    }
    const existing = d.models.version(f.id, f.version);
    if (existing && existing.path !== file.rel) continue; // registered through the API for another file
    // A file an admin registered as a version of some model is that version, not a model of its own.
    if (!existing && d.models.versionsByPath(file.rel).length) continue;
    if (existing && existing.statIdentity === (await currentIdentity(file.abs, existing.statIdentity))) continue;
    if (existing && existing.state !== "unloaded" && existing.state !== "failed") {
      if (forLoadOf !== undefined) continue;
      // Never under a live session; an operator who overwrote a serving model's file hears why nothing changed.
      const reason = `changed since it was registered, and version ${f.version} serves (${existing.state}): its record stays that of what serves; Triton's repository load (POST /v2/repository/models/${f.id}/load) reloads it from the file without downtime, or unload it and rescan`;
      report.skipped.push({ path: file.rel, reason });
      continue;
    }
    toHash.push({ id: f.id, version: f.version, file });
  }
  // One hash worker for the whole scan: starting one per file made a first start
  // with 500 small models take 20 s before listening.
  if (toHash.length) {
    // At a start this runs before the server listens: say why it is not listening yet.
    d.log.info("hashing new or changed model files", { count: toHash.length, files: toHash.slice(0, 20).map((f) => f.file.rel) });
    await withHashWorker(async (worker) => {
      for (const { id, version, file } of toHash) {
        const fp = await fingerprintWith(worker, file.abs);
        const entry = { id, version: String(version) };
        d.db.tx(() => {
          // Hashing yielded: look again before writing.
          const now = d.models.version(id, version);
          if (!now) {
            if (!d.models.get(id)) d.models.insert({ id, source: "scan" });
            d.models.insertVersion({ modelId: id, version, path: file.rel, ...fp, source: "scan" });
            report.added.push(entry);
          } else if (now.path === file.rel && (now.state === "unloaded" || now.state === "failed")) {
            d.models.updateVersionFile(id, version, fp);
            report.updated.push(entry);
          }
        });
      }
    });
  }
  for (const skip of report.skipped) d.log.warn("skipping a model file", { ...skip });
  return report;
}

/** Places the built-in demo model into the default model dir so a fresh start serves something real. */
export async function installDemoModel(modelDir: string, bytes: Uint8Array): Promise<boolean> {
  const target = join(modelDir, "demo.onnx");
  if (await stat(target).then(() => true, () => false)) return false;
  await mkdir(modelDir, { recursive: true });
  await writeFile(target, bytes);
  return true;
}

/** The registry, or only the loaded models, most recently used first (what Ollama's /api/ps answers). */
export function listModels(filter: { state?: ModelRecord["state"] }, d: ViewDeps): ModelView[] {
  const models = d.models.list(filter);
  // The whole registry in one read of its versions, not one per model: with 500 models the
  // per-model reads were most of a list's ~16 ms on the HTTP thread. A filtered list is
  // usually a few models, for which reading every version would cost more.
  const versionsOf = new Map<string, VersionRecord[]>();
  if (!filter.state) {
    for (const v of d.models.allVersions()) {
      const list = versionsOf.get(v.modelId);
      if (list) list.push(v);
      else versionsOf.set(v.modelId, [v]);
    }
  }
  const activeModel = d.settings.activeModel();
  const views = models.map((m) => toView(m, d, { versions: filter.state ? d.models.versions(m.id) : (versionsOf.get(m.id) ?? []), activeModel }));
  return filter.state === "loaded" ? views.sort((a, b) => (b.lastUsedAt ?? "").localeCompare(a.lastUsedAt ?? "")) : views;
}
