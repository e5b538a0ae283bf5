// One Db interface over each runtime's SQLite driver (src/platform/sqlite.ts
// picks the driver): cached statements, pragmas, and transactions.
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

function wrapStatement<Row>(s: RawStatement): Statement<Row> {
  const args = (p?: Params) => (p === undefined ? [] : [p]);
  return {
    get: (p) => (s.get(...args(p)) ?? undefined) as Row | undefined,
    all: (p) => s.all(...args(p)) as Row[],
    run: (p) => ({ changes: Number(s.run(...args(p)).changes) }),
  };
}

export interface OpenOptions {
  busyTimeoutMs?: number;
  /** FULL: a committed job or registry change survives power loss, not only a crash. */
  synchronous?: "FULL" | "NORMAL";
}

export async function openDatabase(path: string, opts: OpenOptions = {}): Promise<Db> {
  const raw = await openSqlite(path);
  raw.exec(`PRAGMA busy_timeout = ${opts.busyTimeoutMs ?? 5000}`);
  raw.exec("PRAGMA journal_mode = WAL");
  raw.exec(`PRAGMA synchronous = ${opts.synchronous ?? "FULL"}`);
  raw.exec("PRAGMA foreign_keys = ON");
  const cache = new Map<string, Statement<unknown>>();
  let depth = 0;
  return {
    prepare<Row>(sql: string) {
      let s = cache.get(sql);
      if (!s) {
        s = wrapStatement<unknown>(raw.prepare(sql));
        cache.set(sql, s);
      }
      return s as Statement<Row>;
    },
    exec: (sql) => void raw.exec(sql),
    tx<T>(fn: () => T): T {
      // Nested calls join the outer transaction.
      if (depth > 0) return fn();
      raw.exec("BEGIN IMMEDIATE");
      depth++;
      try {
        const result = fn();
        raw.exec("COMMIT");
        return result;
      } catch (err) {
        raw.exec("ROLLBACK");
        throw err;
      } finally {
        depth--;
      }
    },
    close: () => raw.close(),
  };
}
