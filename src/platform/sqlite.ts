// The SQLite driver of each runtime: bun:sqlite under Bun (and in the compiled
// binary), node:sqlite under Deno, better-sqlite3 under Node. Neither of the
// others loads where it is not listed (better-sqlite3 is a legacy nan addon).
import { runtimeName } from "./runtime";

export interface RawStatement {
  get(...a: unknown[]): unknown;
  all(...a: unknown[]): unknown[];
  run(...a: unknown[]): { changes: number | bigint };
  /** bun:sqlite only; the other drivers free a statement with its database. */
  finalize?(): void;
}
export interface RawDb {
  prepare(sql: string): RawStatement;
  exec(sql: string): unknown;
  close(): void;
}

/** Named parameters bind without their @ prefix on every driver, as in better-sqlite3. */
export async function openSqlite(path: string): Promise<RawDb> {
  if (runtimeName === "bun") {
    const { Database } = await import("bun:sqlite");
    return new Database(path, { create: true, strict: true }) as unknown as RawDb;
  }
  if (runtimeName === "deno") {
    type DenoStatement = RawStatement & { setAllowBareNamedParameters?(v: boolean): void };
    const { DatabaseSync } = (await import("node:sqlite")) as unknown as { DatabaseSync: new (p: string) => { prepare(sql: string): DenoStatement; exec(sql: string): void; close(): void } };
    const db = new DatabaseSync(path);
    return {
      prepare(sql) {
        const s = db.prepare(sql);
        s.setAllowBareNamedParameters?.(true);
        return s;
      },
      exec: (sql) => db.exec(sql),
      close: () => db.close(),
    };
  }
  const mod = (await import("better-sqlite3")) as unknown as { default: new (p: string) => RawDb };
  return new mod.default(path);
}
