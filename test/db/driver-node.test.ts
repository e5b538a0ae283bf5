// Under Node the one driver module must choose better-sqlite3 (Bun cannot load
// it, so everything else here runs on bun:sqlite). Bundle a small program for
// Node and run it with the node on PATH.
import { afterAll, expect, test } from "bun:test";
import { MIGRATIONS } from "../../src/db/migrations";
import { join } from "node:path";
import { cleanup, tempDir } from "../helpers";

const dir = tempDir();
afterAll(() => cleanup({ root: dir } as never));

test("under Node, the driver uses better-sqlite3 with the same migrations and queries", async () => {
  // Inside the repo, so Node resolves better-sqlite3 from its node_modules (ESM ignores NODE_PATH).
  const out = join(import.meta.dir, "../../test-artifacts/node-driver.mjs");
  const built = await Bun.build({
    entrypoints: [join(import.meta.dir, "../fixtures/node-driver-entry.ts")],
    target: "node",
    format: "esm",
    external: ["better-sqlite3"],
  });
  expect(built.success).toBe(true);
  await Bun.write(out, built.outputs[0]!);
  const run = Bun.spawnSync(["node", out, join(dir, "node.sqlite")]);
  const stdout = run.stdout.toString();
  expect({ code: run.exitCode, stderr: run.stderr.toString().slice(0, 500) }).toEqual({ code: 0, stderr: "" });
  expect(JSON.parse(stdout)).toEqual({ runtime: "node", version: { from: 0, to: MIGRATIONS.length }, model: "unloaded", claimed: true, mode: "wal", full: "STORAGE_FULL", failed: "STORAGE_FAILED" });
});
