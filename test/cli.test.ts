import { afterAll, expect, test } from "bun:test";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { decodeJwt } from "jose";
import { cleanup, tempDir } from "./helpers";

const dir = tempDir();
afterAll(() => cleanup({ root: dir } as never));
const main = join(import.meta.dir, "../src/main.ts");

function run(args: string[], env: Record<string, string> = {}) {
  const p = Bun.spawnSync([process.execPath, main, ...args], {
    env: { PATH: process.env.PATH ?? "", HOME: dir, MODELD_DATA_DIR: join(dir, "data"), ...env },
  });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

test("token prints only the token, signed with a generated 0600 secret", () => {
  const r = run(["token", "--sub", "alice", "--role", "admin", "--ttl", "2h"]);
  expect(r.code).toBe(0);
  expect(r.out.trim().split("\n")).toHaveLength(1);
  const claims = decodeJwt(r.out.trim());
  expect(claims).toMatchObject({ sub: "alice", role: "admin" });
  expect(claims.exp! - claims.iat!).toBe(7200);
  expect(statSync(join(dir, "data", "jwt-secret")).mode & 0o777).toBe(0o600);
});

test("bad config exits non-zero naming the variable", () => {
  const r = run(["migrate"], { MODELD_PORT: "-1" });
  expect(r.code).toBe(1);
  expect(r.err).toContain("MODELD_PORT");
});

test("unknown flags and commands print usage and exit 2", () => {
  for (const args of [["--frobnicate", "1"], ["launch"]]) {
    const r = run(args);
    expect(r.code).toBe(2);
    expect(r.err).toContain("Usage:");
  }
});

test("token refuses when auth uses external keys", () => {
  const r = run(["token", "--sub", "a", "--role", "admin"], { MODELD_JWKS_URL: "https://idp.example/jwks.json" });
  expect(r.code).toBe(1);
  expect(r.err).toContain("identity provider");
});

test("migrate, models list and backup work on the same data dir", () => {
  expect(run(["migrate"]).code).toBe(0);
  const backup = join(dir, "backup.sqlite");
  const r = run(["backup", backup]);
  expect(r.code).toBe(0);
  expect(statSync(backup).size).toBeGreaterThan(0);
  expect(run(["models", "list"]).code).toBe(0);
  expect(run(["--version"]).out).toMatch(/^modeld \d+\.\d+\.\d+/);
  const again = run(["backup", backup]);
  expect(again).toMatchObject({ code: 1, err: `modeld: cannot write the backup ${backup}: it already exists, and a backup never overwrites a file\n` });
});

test("backup and models list on a data dir with no database fail, naming it, and create nothing", () => {
  const wrong = join(dir, "mistyped");
  for (const args of [["backup", join(dir, "empty.sqlite")], ["models", "list"]]) {
    const r = run(args, { MODELD_DATA_DIR: wrong });
    expect(r).toMatchObject({ code: 1, out: "" });
    expect(r.err).toBe(`modeld: there is no database at ${join(wrong, "modeld.sqlite")}: is ${wrong} (MODELD_DATA_DIR) the data dir modeld serves from?\n`);
  }
  expect(existsSync(wrong)).toBe(false);
  expect(existsSync(join(dir, "empty.sqlite"))).toBe(false);
});
