// The driver's error contract, on a real database file whose size is capped
// (`max_page_count`), which SQLite reports exactly as it reports a full disk,
// and on one made read-only (`query_only`), as SQLite reports a read-only
// filesystem. A real failing disk is test/db/storage-failed.test.ts.
import { afterAll, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openDatabase } from "../../src/db/driver";
import { AppError } from "../../src/errors";
import { cleanup, tempDir } from "../helpers";

const dir = tempDir();
afterAll(() => cleanup({ root: dir } as never));

/** What `fn` threw, or undefined. */
async function caught(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
}

test("a full database is STORAGE_FULL naming the file, also inside a transaction SQLite already rolled back", async () => {
  const path = join(dir, "capped.sqlite");
  const db = await openDatabase(path);
  db.exec("CREATE TABLE t (x BLOB)");
  db.prepare("INSERT INTO t VALUES (@x)").run({ x: new Uint8Array(100) });
  const pages = db.prepare<{ page_count: number }>("PRAGMA page_count").get()!.page_count;
  db.exec(`PRAGMA max_page_count = ${pages}`);
  const big = { x: new Uint8Array(64 * 1024) };

  const alone = await caught(() => db.prepare("INSERT INTO t VALUES (@x)").run(big));
  expect(alone).toBeInstanceOf(AppError);
  expect(alone).toMatchObject({ code: "STORAGE_FULL", status: 507, message: expect.stringContaining(path) });
  // Not "cannot rollback - no transaction is active" from the ROLLBACK after it.
  const inTx = await caught(() => db.tx(() => void db.prepare("INSERT INTO t VALUES (@x)").run(big)));
  expect(inTx).toMatchObject({ code: "STORAGE_FULL" });

  // Nothing was half-written, and the database takes writes that fit.
  expect(db.prepare<{ n: number }>("SELECT count(*) AS n FROM t").get()!.n).toBe(1);
  db.tx(() => void db.prepare("DELETE FROM t").run());
  expect(db.prepare<{ n: number }>("SELECT count(*) AS n FROM t").get()!.n).toBe(0);
  db.close();
});

test("a database that cannot be written is STORAGE_FAILED naming the file and SQLite's error; reads go on", async () => {
  const path = join(dir, "read-only.sqlite");
  const db = await openDatabase(path);
  db.exec("CREATE TABLE t (x INTEGER)");
  db.prepare("INSERT INTO t VALUES (@x)").run({ x: 1 });
  db.exec("PRAGMA query_only = 1");
  const err = await caught(() => db.tx(() => void db.prepare("INSERT INTO t VALUES (@x)").run({ x: 2 })));
  expect(err).toBeInstanceOf(AppError);
  const { code, status, message } = err as AppError;
  expect({ code, status }).toEqual({ code: "STORAGE_FAILED", status: 503 });
  expect(message).toContain(path);
  expect(message).toContain("readonly");
  expect(db.prepare<{ n: number }>("SELECT count(*) AS n FROM t").get()!.n).toBe(1);
  db.close();
});

test("a file that is not SQLite's, or whose pages are damaged, is STORAGE_FAILED naming it, with the advice to restore a backup", async () => {
  const notADatabase = join(dir, "garbage.sqlite");
  writeFileSync(notADatabase, new Uint8Array(8192).map((_, i) => (i * 37 + 11) % 251));
  const damaged = join(dir, "damaged.sqlite");
  const db = await openDatabase(damaged);
  db.exec("CREATE TABLE t (x BLOB)");
  for (let i = 0; i < 20; i++) db.prepare("INSERT INTO t VALUES (@x)").run({ x: new Uint8Array(1000).fill(i) });
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
  // Page 2 onwards overwritten; the header (page 1) still says SQLite.
  const bytes = readFileSync(damaged);
  bytes.fill(0xab, 4096, Math.min(bytes.length, 4096 * 4));
  writeFileSync(damaged, bytes);

  for (const [path, sqlite] of [[notADatabase, "file is not a database"], [damaged, "database disk image is malformed"]] as const) {
    const err = await caught(async () => {
      const opened = await openDatabase(path);
      try {
        opened.prepare("SELECT count(*) AS n FROM t").all();
      } finally {
        opened.close();
      }
    });
    expect(err).toBeInstanceOf(AppError);
    const { code, message } = err as AppError;
    expect({ path, code }).toEqual({ path, code: "STORAGE_FAILED" });
    expect(message).toContain(path);
    expect(message).toContain(sqlite);
    expect(message).toContain("restore a copy made by modeld backup");
  }
});
