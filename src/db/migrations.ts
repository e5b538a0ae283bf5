import { MIGRATION_SQL } from "../platform/assets";
import type { Db } from "./driver";

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** The files carried with modeld (src/platform/assets.ts lists them). */
export const MIGRATIONS: Migration[] = MIGRATION_SQL;

/** Applies every pending migration in one transaction; returns the resulting schema version. */
export function migrate(db: Db, migrations: Migration[] = MIGRATIONS): { from: number; to: number } {
  return db.tx(() => {
    db.exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
    );
    const from = db.prepare<{ v: number | null }>("SELECT max(version) AS v FROM schema_migrations").get()?.v ?? 0;
    const known = Math.max(0, ...migrations.map((m) => m.version));
    if (from > known) {
      throw new Error(`database schema version ${from} is newer than this modeld (${known}); upgrade modeld`);
    }
    for (const m of migrations.filter((m) => m.version > from).sort((a, b) => a.version - b.version)) {
      db.exec(m.sql);
      db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (@v, @n, @at)").run({
        v: m.version,
        n: m.name,
        at: new Date().toISOString(),
      });
    }
    return { from, to: Math.max(from, known) };
  });
}
