import type { Db } from "./driver";

export const MODEL_STATES = ["unloaded", "loading", "loaded", "unloading", "failed"] as const;
export type ModelState = (typeof MODEL_STATES)[number];

export interface TensorInfo {
  name: string;
  /** ONNX Runtime's element type name, e.g. float32, int64, string. */
  type: string;
  /** -1 for a dynamic dimension. */
  shape: number[];
  /** Symbolic names of dynamic dimensions where the model gives them. */
  dimNames?: (string | null)[];
}

export interface ModelRecord {
  id: string;
  path: string;
  sizeBytes: number;
  sha256: string;
  mtimeMs: number;
  source: "scan" | "api";
  state: ModelState;
  lastError: { code: string; message: string } | null;
  inputs: TensorInfo[] | null;
  outputs: TensorInfo[] | null;
  providers: string[] | null;
  createdAt: string;
  updatedAt: string;
  loadedAt: string | null;
}

interface Row {
  id: string;
  path: string;
  size_bytes: number;
  sha256: string;
  mtime_ms: number;
  source: "scan" | "api";
  state: ModelState;
  last_error_code: string | null;
  last_error_msg: string | null;
  inputs: string | null;
  outputs: string | null;
  providers: string | null;
  created_at: string;
  updated_at: string;
  loaded_at: string | null;
}

function toRecord(r: Row): ModelRecord {
  return {
    id: r.id,
    path: r.path,
    sizeBytes: r.size_bytes,
    sha256: r.sha256,
    mtimeMs: r.mtime_ms,
    source: r.source,
    state: r.state,
    lastError: r.last_error_code ? { code: r.last_error_code, message: r.last_error_msg ?? "" } : null,
    inputs: r.inputs ? JSON.parse(r.inputs) : null,
    outputs: r.outputs ? JSON.parse(r.outputs) : null,
    providers: r.providers ? JSON.parse(r.providers) : null,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    loadedAt: r.loaded_at,
  };
}

const now = () => new Date().toISOString();

export interface NewModel {
  id: string;
  path: string;
  sizeBytes: number;
  sha256: string;
  mtimeMs: number;
  source: "scan" | "api";
  providers?: string[] | null;
}

export function createModelsRepo(db: Db) {
  return {
    get(id: string): ModelRecord | undefined {
      const r = db.prepare<Row>("SELECT * FROM models WHERE id = @id").get({ id });
      return r && toRecord(r);
    },
    list(): ModelRecord[] {
      return db.prepare<Row>("SELECT * FROM models ORDER BY id").all().map(toRecord);
    },
    insert(m: NewModel): ModelRecord {
      const at = now();
      db.prepare(
        `INSERT INTO models (id, path, size_bytes, sha256, mtime_ms, source, providers, created_at, updated_at)
         VALUES (@id, @path, @size, @sha, @mtime, @source, @providers, @at, @at)`,
      ).run({
        id: m.id,
        path: m.path,
        size: m.sizeBytes,
        sha: m.sha256,
        mtime: m.mtimeMs,
        source: m.source,
        providers: m.providers ? JSON.stringify(m.providers) : null,
        at,
      });
      return this.get(m.id)!;
    },
    /** The file on disk changed while the model was not loaded: record what it is now. */
    updateFile(id: string, f: { sizeBytes: number; sha256: string; mtimeMs: number }): void {
      db.prepare(
        "UPDATE models SET size_bytes = @size, sha256 = @sha, mtime_ms = @mtime, updated_at = @at WHERE id = @id",
      ).run({ id, size: f.sizeBytes, sha: f.sha256, mtime: f.mtimeMs, at: now() });
    },
    setState(id: string, state: ModelState, error: { code: string; message: string } | null = null): void {
      db.prepare(
        `UPDATE models SET state = @state, last_error_code = @code, last_error_msg = @msg, updated_at = @at,
           loaded_at = CASE WHEN @state = 'loaded' THEN @at WHEN @state = 'loading' THEN loaded_at ELSE NULL END
         WHERE id = @id`,
      ).run({ id, state, code: error?.code ?? null, msg: error?.message ?? null, at: now() });
    },
    setMetadata(id: string, inputs: TensorInfo[], outputs: TensorInfo[]): void {
      db.prepare("UPDATE models SET inputs = @i, outputs = @o, updated_at = @at WHERE id = @id").run({
        id,
        i: JSON.stringify(inputs),
        o: JSON.stringify(outputs),
        at: now(),
      });
    },
    delete(id: string): boolean {
      return db.prepare("DELETE FROM models WHERE id = @id").run({ id }).changes > 0;
    },
    /** Models in a state that only a live session can justify. */
    listClaimingSession(): ModelRecord[] {
      return db
        .prepare<Row>("SELECT * FROM models WHERE state IN ('loading', 'loaded', 'unloading') ORDER BY id")
        .all()
        .map(toRecord);
    },
  };
}
export type ModelsRepo = ReturnType<typeof createModelsRepo>;
