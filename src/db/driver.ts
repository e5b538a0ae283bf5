// One Db interface over each runtime's SQLite driver (src/platform/sqlite.ts
// picks the driver): cached statements, pragmas, and transactions.
import { AppError } from "../errors";
import { openSqlite, type RawStatement } from "../platform/sqlite";

export type SqlValue = string | number | bigint | null | Uint8Array;
export type Params = Record<string, SqlValue>;

export interface Statement<Row> {
  get(params?: Params): Row | undefined;
  all(params?: Params): Row[];
  run(params?: Params): { changes: number };
}

export interface Db {
  prepare<Row = Record<string, unknown>>(sql: string): Statement<Row>;
  exec(sql: string): void;
  /** Runs fn in a BEGIN IMMEDIATE transaction so writers queue on busy_timeout instead of failing mid-way. */
  tx<T>(fn: () => T): T;
  close(): void;
}

interface SqliteCode {
  name: string;
  code: number;
  /** SQLite's own text for it, where that names it alone. */
  text?: string;
  /** Matches the primary code's extended codes too (SQLITE_IOERR_WRITE for SQLITE_IOERR). */
  family?: boolean;
  /** Says the file itself is damaged, which outlives the disk's repair: only a copy brings it back. */
  damagedFile?: boolean;
}
const SQLITE_FULL: SqliteCode = { name: "SQLITE_FULL", code: 13, text: "database or disk is full" };
/** Failing to grow the WAL index: how a full disk shows when the database is opened. */
const SQLITE_IOERR_SHMSIZE: SqliteCode = { name: "SQLITE_IOERR_SHMSIZE", code: 4874 };
const SQLITE_BUSY: SqliteCode = { name: "SQLITE_BUSY", code: 5, text: "database is locked" };
/**
 * How a failing disk shows: I/O errors, a filesystem gone read-only, the
 * "malformed" pages an I/O error leaves SQLite reading, and a file that is
 * damaged or not SQLite's at all.
 */
const DISK_FAILURES: SqliteCode[] = [
  { name: "SQLITE_IOERR", code: 10, text: "disk I/O error", family: true },
  { name: "SQLITE_READONLY", code: 8, text: "attempt to write a readonly database", family: true },
  { name: "SQLITE_CORRUPT", code: 11, text: "database disk image is malformed", family: true, damagedFile: true },
  { name: "SQLITE_NOTADB", code: 26, text: "file is not a database", damagedFile: true },
];

/**
 * Whether a driver's error is SQLite's `c`. bun:sqlite and better-sqlite3 name
 * it in `code`, node:sqlite numbers it in `errcode`, except from exec(), whose
 * error has only SQLite's text.
 */
function isSqlite(err: unknown, c: SqliteCode): boolean {
  const e = err as { code?: unknown; errcode?: unknown; message?: unknown } | null;
  if (e?.code === c.name || e?.errcode === c.code || (c.text !== undefined && e?.message === c.text)) return true;
  return c.family === true && ((typeof e?.code === "string" && e.code.startsWith(`${c.name}_`)) || (typeof e?.errcode === "number" && (e.errcode & 0xff) === c.code));
}
const isSqliteFull = (err: unknown) => isSqlite(err, SQLITE_FULL) || isSqlite(err, SQLITE_IOERR_SHMSIZE);
const diskFailure = (err: unknown) => DISK_FAILURES.find((c) => isSqlite(err, c));

/**
 * A full or failing disk is the operator's to fix, not a bug: it leaves the
 * driver as a STORAGE_FULL or STORAGE_FAILED error that says where, and every
 * other error as it came.
 */
function storageErrors<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (isSqliteFull(err)) throw new AppError("STORAGE_FULL", `the database ${path} could not be written: the disk is full; free space there and retry`);
    const failure = diskFailure(err);
    if (failure) {
      const e = err as { code?: unknown; message?: unknown };
      // node:sqlite's code is a generic ERR_SQLITE_ERROR; SQLite's own names say more.
      const cause = typeof e.code === "string" && e.code.startsWith("SQLITE_") ? `${e.message} (${e.code})` : String(e.message);
      const restore = failure.damagedFile ? "; if the file itself is damaged, restore a copy made by modeld backup" : "";
      throw new AppError("STORAGE_FAILED", `the database ${path} could not be read or written: ${cause}; check the disk it is on, then restart modeld${restore}`);
    }
    throw err;
  }
}

function wrapStatement<Row>(s: RawStatement, path: string): Statement<Row> {
  const args = (p?: Params) => (p === undefined ? [] : [p]);
  return {
    get: (p) => storageErrors(path, () => (s.get(...args(p)) ?? undefined) as Row | undefined),
    all: (p) => storageErrors(path, () => s.all(...args(p)) as Row[]),
    run: (p) => storageErrors(path, () => ({ changes: Number(s.run(...args(p)).changes) })),
  };
}

export interface OpenOptions {
  busyTimeoutMs?: number;
  /** FULL: a committed job or registry change survives power loss, not only a crash. */
  synchronous?: "FULL" | "NORMAL";
}

export async function openDatabase(path: string, opts: OpenOptions = {}): Promise<Db> {
  const raw = await openSqlite(path);
  try {
    storageErrors(path, () => {
      raw.exec(`PRAGMA busy_timeout = ${opts.busyTimeoutMs ?? 5000}`);
      raw.exec("PRAGMA journal_mode = WAL");
      raw.exec(`PRAGMA synchronous = ${opts.synchronous ?? "FULL"}`);
      raw.exec("PRAGMA foreign_keys = ON");
    });
  } catch (err) {
    raw.close();
    throw err;
  }
  const cache = new Map<string, Statement<unknown>>();
  const prepared: RawStatement[] = [];
  let depth = 0;
  return {
    prepare<Row>(sql: string) {
      let s = cache.get(sql);
      if (!s) {
        const r = raw.prepare(sql);
        prepared.push(r);
        s = wrapStatement<unknown>(r, path);
        cache.set(sql, s);
      }
      return s as Statement<Row>;
    },
    exec: (sql) => void storageErrors(path, () => raw.exec(sql)),
    tx<T>(fn: () => T): T {
      // Nested calls join the outer transaction.
      if (depth > 0) return fn();
      storageErrors(path, () => raw.exec("BEGIN IMMEDIATE"));
      depth++;
      try {
        const result = fn();
        storageErrors(path, () => raw.exec("COMMIT"));
        return result;
      } catch (err) {
        // SQLite rolls back by itself after some errors (a full disk among them), and
        // then ROLLBACK fails; the error worth reporting is the one that got here.
        try {
          raw.exec("ROLLBACK");
        } catch {}
        throw err;
      } finally {
        depth--;
      }
    },
    close() {
      // bun:sqlite keeps the files open until every statement is finalized, and these live in the cache.
      for (const r of prepared) r.finalize?.();
      cache.clear();
      raw.close();
    },
  };
}

/**
 * Locks `path`, a SQLite file of its own, for as long as this process lives or
 * until the returned function is called; undefined when someone else holds it.
 * SQLite's exclusive locking mode keeps the lock after a first transaction, and
 * the kernel drops it when the process dies, kill -9 included, so a stale lock
 * never blocks a restart.
 */
export async function holdLock(path: string): Promise<(() => void) | undefined> {
  const raw = await openSqlite(path);
  try {
    raw.exec("PRAGMA busy_timeout = 0");
    raw.exec("PRAGMA locking_mode = EXCLUSIVE");
    raw.exec("BEGIN EXCLUSIVE");
    raw.exec("COMMIT");
  } catch (err) {
    raw.close();
    if (isSqlite(err, SQLITE_BUSY)) return undefined;
    throw err;
  }
  return () => raw.close();
}
