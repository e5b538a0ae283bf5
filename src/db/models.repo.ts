// The registry: models and their numbered versions. State columns are written
// only through the guarded `updateState` statements, which only the lifecycle
// owner (src/lifecycle/) calls.
import type { ModelSettings } from "../model-settings";
import type { TensorInfo } from "../runtime/protocol";
import type { Db } from "./driver";

export const MODEL_STATES = ["unloaded", "loading", "loaded", "unloading", "failed"] as const;
export type ModelState = (typeof MODEL_STATES)[number];

export type ErrorInfo = { code: string; message: string };

export interface ModelRecord {
  id: string;
  source: "scan" | "api";
  state: ModelState;
  lastError: ErrorInfo | null;
  servingVersion: number | null;
  settings: Partial<ModelSettings>;
  createdAt: string;
  updatedAt: string;
  loadedAt: string | null;
}

export interface VersionRecord {
  modelId: string;
  version: number;
  path: string;
  sizeBytes: number;
  sha256: string;
  mtimeMs: number;
  /** The file's stat identity when sha256 was computed (see lifecycle/model-files.ts). */
  statIdentity: string | null;
  source: "scan" | "api";
  state: ModelState;
  lastError: ErrorInfo | null;
  /** Measured resident cost while loaded; null otherwise. */
  memoryBytes: number | null;
  inputs: TensorInfo[] | null;
  outputs: TensorInfo[] | null;
  createdAt: string;
  updatedAt: string;
  loadedAt: string | null;
}

interface ModelRow {
  id: string;
  source: "scan" | "api";
  state: ModelState;
  last_error_code: string | null;
  last_error_msg: string | null;
  serving_version: number | null;
  settings: string;
  created_at: string;
  updated_at: string;
  loaded_at: string | null;
}

interface VersionRow {
  model_id: string;
  version: number;
  path: string;
  size_bytes: number;
  sha256: string;
  mtime_ms: number;
  stat_identity: string | null;
  source: "scan" | "api";
  state: ModelState;
  last_error_code: string | null;
  last_error_msg: string | null;
  memory_bytes: number | null;
  inputs: string | null;
  outputs: string | null;
  created_at: string;
  updated_at: string;
  loaded_at: string | null;
}

const errorOf = (code: string | null, msg: string | null): ErrorInfo | null => (code ? { code, message: msg ?? "" } : null);

function toModel(r: ModelRow): ModelRecord {
  return {
    id: r.id,
    source: r.source,
    state: r.state,
    lastError: errorOf(r.last_error_code, r.last_error_msg),
    servingVersion: r.serving_version,
    settings: JSON.parse(r.settings),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    loadedAt: r.loaded_at,
  };
}

function toVersion(r: VersionRow): VersionRecord {
  return {
    modelId: r.model_id,
    version: r.version,
    path: r.path,
    sizeBytes: r.size_bytes,
    sha256: r.sha256,
    mtimeMs: r.mtime_ms,
    statIdentity: r.stat_identity,
    source: r.source,
    state: r.state,
    lastError: errorOf(r.last_error_code, r.last_error_msg),
    memoryBytes: r.memory_bytes,
    inputs: r.inputs ? JSON.parse(r.inputs) : null,
    outputs: r.outputs ? JSON.parse(r.outputs) : null,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    loadedAt: r.loaded_at,
  };
}

const now = () => new Date().toISOString();

export interface FileFacts {
  path: string;
  sizeBytes: number;
  sha256: string;
  mtimeMs: number;
  statIdentity: string;
}

export interface NewVersion extends FileFacts {
  modelId: string;
  version: number;
  source: "scan" | "api";
}

/** A guarded state write: applied only while the row is in one of `from`. */
export interface StateWrite {
  from: readonly ModelState[];
  to: ModelState;
  error?: ErrorInfo | null;
}

/** loaded_at follows the state: set on entering `loaded`, kept while loading, cleared otherwise. */
const LOADED_AT = "CASE WHEN @to = 'loaded' THEN @at WHEN @to = 'loading' THEN loaded_at ELSE NULL END";

export function createModelsRepo(db: Db) {
  const listVersions = (modelId: string) =>
    db.prepare<VersionRow>("SELECT * FROM model_versions WHERE model_id = @m ORDER BY version").all({ m: modelId }).map(toVersion);

  return {
    get(id: string): ModelRecord | undefined {
      const r = db.prepare<ModelRow>("SELECT * FROM models WHERE id = @id").get({ id });
      return r && toModel(r);
    },
    list(filter: { state?: ModelState } = {}): ModelRecord[] {
      const where = filter.state ? "WHERE state = @state" : "";
      return db
        .prepare<ModelRow>(`SELECT * FROM models ${where} ORDER BY id`)
        .all(filter.state ? { state: filter.state } : {})
        .map(toModel);
    },
    insert(m: { id: string; source: "scan" | "api"; settings?: Partial<ModelSettings> }): ModelRecord {
      const at = now();
      db.prepare(
        `INSERT INTO models (id, source, settings, created_at, updated_at) VALUES (@id, @source, @settings, @at, @at)`,
      ).run({ id: m.id, source: m.source, settings: JSON.stringify(m.settings ?? {}), at });
      return this.get(m.id)!;
    },
    setSettings(id: string, settings: Partial<ModelSettings>): void {
      db.prepare("UPDATE models SET settings = @s, updated_at = @at WHERE id = @id").run({ id, s: JSON.stringify(settings), at: now() });
    },
    delete(id: string): boolean {
      return db.prepare("DELETE FROM models WHERE id = @id").run({ id }).changes > 0;
    },

    versions: listVersions,
    version(modelId: string, version: number): VersionRecord | undefined {
      const r = db.prepare<VersionRow>("SELECT * FROM model_versions WHERE model_id = @m AND version = @v").get({ m: modelId, v: version });
      return r && toVersion(r);
    },
    /** Every registered version, ordered by model and version. */
    allVersions(): VersionRecord[] {
      return db.prepare<VersionRow>("SELECT * FROM model_versions ORDER BY model_id, version").all().map(toVersion);
    },
    /** Every registered version's key and state, in one read and without its recorded inputs and outputs: for a scrape or the statistics of them all. */
    versionStates(): { modelId: string; version: number; state: ModelState }[] {
      return db
        .prepare<{ model_id: string; version: number; state: ModelState }>("SELECT model_id, version, state FROM model_versions ORDER BY model_id, version")
        .all()
        .map((r) => ({ modelId: r.model_id, version: r.version, state: r.state }));
    },
    /** The versions registered for this file (relative path), whatever model they belong to. */
    versionsByPath(path: string): VersionRecord[] {
      return db.prepare<VersionRow>("SELECT * FROM model_versions WHERE path = @path").all({ path }).map(toVersion);
    },
    newestVersion(modelId: string): VersionRecord | undefined {
      const r = db.prepare<VersionRow>("SELECT * FROM model_versions WHERE model_id = @m ORDER BY version DESC LIMIT 1").get({ m: modelId });
      return r && toVersion(r);
    },
    insertVersion(v: NewVersion): VersionRecord {
      const at = now();
      db.prepare(
        `INSERT INTO model_versions (model_id, version, path, size_bytes, sha256, mtime_ms, stat_identity, source, created_at, updated_at)
         VALUES (@m, @v, @path, @size, @sha, @mtime, @ident, @source, @at, @at)`,
      ).run({ m: v.modelId, v: v.version, path: v.path, size: v.sizeBytes, sha: v.sha256, mtime: v.mtimeMs, ident: v.statIdentity, source: v.source, at });
      return this.version(v.modelId, v.version)!;
    },
    deleteVersion(modelId: string, version: number): boolean {
      return db.prepare("DELETE FROM model_versions WHERE model_id = @m AND version = @v").run({ m: modelId, v: version }).changes > 0;
    },
    /** The file on disk changed while the version was not loaded: record what it is now. */
    updateVersionFile(modelId: string, version: number, f: Omit<FileFacts, "path">): void {
      db.prepare(
        `UPDATE model_versions SET size_bytes = @size, sha256 = @sha, mtime_ms = @mtime, stat_identity = @ident, updated_at = @at
         WHERE model_id = @m AND version = @v`,
      ).run({ m: modelId, v: version, size: f.sizeBytes, sha: f.sha256, mtime: f.mtimeMs, ident: f.statIdentity, at: now() });
    },
    setVersionMetadata(modelId: string, version: number, inputs: TensorInfo[], outputs: TensorInfo[]): void {
      db.prepare("UPDATE model_versions SET inputs = @i, outputs = @o, updated_at = @at WHERE model_id = @m AND version = @v").run({
        m: modelId,
        v: version,
        i: JSON.stringify(inputs),
        o: JSON.stringify(outputs),
        at: now(),
      });
    },

    /** The measured cost of a loaded version (null once unloaded). For src/lifecycle/ only. */
    setVersionMemory(modelId: string, version: number, bytes: number | null): void {
      db.prepare("UPDATE model_versions SET memory_bytes = @b WHERE model_id = @m AND version = @v").run({ m: modelId, v: version, b: bytes });
    },
    /** What loading this file cost last time, whatever model or version it was registered as. */
    footprint(sha256: string): number | undefined {
      return db.prepare<{ bytes: number }>("SELECT bytes FROM footprints WHERE sha256 = @sha").get({ sha: sha256 })?.bytes;
    },
    recordFootprint(sha256: string, bytes: number): void {
      db.prepare(
        `INSERT INTO footprints (sha256, bytes, measured_at) VALUES (@sha, @bytes, @at)
         ON CONFLICT (sha256) DO UPDATE SET bytes = @bytes, measured_at = @at`,
      ).run({ sha: sha256, bytes, at: now() });
    },

    /** Guarded model state write; false when the row was not in `from`. For src/lifecycle/ only. */
    updateState(id: string, w: StateWrite): boolean {
      return (
        db
          .prepare(
            `UPDATE models SET state = @to, last_error_code = @code, last_error_msg = @msg, updated_at = @at, loaded_at = ${LOADED_AT}
             WHERE id = @id AND state IN (SELECT value FROM json_each(@from))`,
          )
          .run({ id, to: w.to, from: JSON.stringify(w.from), code: w.error?.code ?? null, msg: w.error?.message ?? null, at: now() }).changes > 0
      );
    },
    /** Guarded version state write; false when the row was not in `from`. For src/lifecycle/ only. */
    updateVersionState(modelId: string, version: number, w: StateWrite): boolean {
      return (
        db
          .prepare(
            `UPDATE model_versions SET state = @to, last_error_code = @code, last_error_msg = @msg, updated_at = @at, loaded_at = ${LOADED_AT}
             WHERE model_id = @m AND version = @v AND state IN (SELECT value FROM json_each(@from))`,
          )
          .run({ m: modelId, v: version, to: w.to, from: JSON.stringify(w.from), code: w.error?.code ?? null, msg: w.error?.message ?? null, at: now() })
          .changes > 0
      );
    },
    /** For src/lifecycle/ only. */
    setServingVersion(id: string, version: number | null): void {
      db.prepare("UPDATE models SET serving_version = @v, updated_at = @at WHERE id = @id").run({ id, v: version, at: now() });
    },
    /** Models and versions in a state that only a live session can justify. */
    listClaimingSession(): { models: ModelRecord[]; versions: VersionRecord[] } {
      const claiming = "state IN ('loading', 'loaded', 'unloading')";
      return {
        models: db.prepare<ModelRow>(`SELECT * FROM models WHERE ${claiming} ORDER BY id`).all().map(toModel),
        versions: db.prepare<VersionRow>(`SELECT * FROM model_versions WHERE ${claiming} ORDER BY model_id, version`).all().map(toVersion),
      };
    },
  };
}
export type ModelsRepo = ReturnType<typeof createModelsRepo>;
