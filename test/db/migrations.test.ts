import { afterEach, expect, test } from "bun:test";
import { join } from "node:path";
import { openDatabase } from "../../src/db/driver";
import { MIGRATIONS, migrate } from "../../src/db/migrations";
import { cleanup, tempDir } from "../helpers";

let dir: string;
afterEach(() => cleanup({ root: dir } as never));

test("migrations apply once, record the version, and use WAL", async () => {
  dir = tempDir();
  const db = await openDatabase(join(dir, "db.sqlite"));
  expect(migrate(db)).toEqual({ from: 0, to: MIGRATIONS.length });
  expect(migrate(db)).toEqual({ from: MIGRATIONS.length, to: MIGRATIONS.length });
  expect(db.prepare<{ journal_mode: string }>("PRAGMA journal_mode").get()?.journal_mode).toBe("wal");
  expect(db.prepare<{ n: number }>("SELECT count(*) AS n FROM schema_migrations").get()?.n).toBe(MIGRATIONS.length);
  db.close();
});

test("a failing migration leaves nothing half-applied", async () => {
  dir = tempDir();
  const db = await openDatabase(join(dir, "db.sqlite"));
  const broken = [...MIGRATIONS, { version: 99, name: "broken", sql: "CREATE TABLE half (x); THIS IS NOT SQL;" }];
  expect(() => migrate(db, broken)).toThrow();
  expect(db.prepare("SELECT name FROM sqlite_master WHERE name IN ('models', 'half')").all()).toEqual([]);
  expect(migrate(db).to).toBe(MIGRATIONS.length);
  db.close();
});

test("a database newer than this modeld is refused", async () => {
  dir = tempDir();
  const db = await openDatabase(join(dir, "db.sqlite"));
  migrate(db);
  db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 'now')").run();
  expect(() => migrate(db)).toThrow(/newer/);
  db.close();
});
