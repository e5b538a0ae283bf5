import { expect, test } from "bun:test";
import { join } from "node:path";

test("the whole tree typechecks under tsc --strict", () => {
  const repo = join(import.meta.dir, "..");
  const r = Bun.spawnSync([join(repo, "node_modules/.bin/tsc"), "-p", repo]);
  expect({ code: r.exitCode, errors: r.stdout.toString().trim() }).toEqual({ code: 0, errors: "" });
}, 120_000);
