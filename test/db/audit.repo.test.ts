import { expect, test } from "bun:test";
import { join } from "node:path";
import { createAuditRepo } from "../../src/db/audit.repo";
import { openDatabase } from "../../src/db/driver";
import { migrate } from "../../src/db/migrations";
import { cleanup, tempDir } from "../helpers";

test("a caller's refusals within a minute of its recorded one are counted into its next entry, each caller and address apart; other calls are all admitted", async () => {
  const dir = tempDir();
  const db = await openDatabase(join(dir, "db.sqlite"));
  migrate(db);
  let now = 0;
  const audit = createAuditRepo(db, () => now);
  expect(audit.admit("anon", "10.0.0.1", 401)).toBe(0);
  for (let i = 0; i < 5; i++) expect(audit.admit("anon", "10.0.0.1", 401)).toBeUndefined();
  expect(audit.admit("anon", "10.0.0.1", 403)).toBeUndefined(); // a refusal either way
  expect(audit.admit("anon", "10.0.0.2", 401)).toBe(0);
  expect(audit.admit("eve", "10.0.0.1", 403)).toBe(0);
  for (let i = 0; i < 3; i++) expect(audit.admit("admin", "10.0.0.1", 202)).toBe(0);
  now = 59_999;
  expect(audit.admit("anon", "10.0.0.1", 401)).toBeUndefined();
  now = 60_000;
  expect(audit.admit("anon", "10.0.0.1", 401)).toBe(7);
  now = 200_000;
  expect(audit.admit("anon", "10.0.0.1", 401)).toBe(0);
  // What the caller chose (a path segment) is cut to a model id's length.
  audit.record({ actor: "anon", action: "POST /x", target: "x".repeat(5000), sourceIp: null, status: 401, outcome: "UNAUTHORIZED", requestId: null, repeats: 7 });
  expect(audit.list(1)[0]).toMatchObject({ target: "x".repeat(128), repeats: 7 });
  db.close();
  cleanup({ root: dir } as never);
});
