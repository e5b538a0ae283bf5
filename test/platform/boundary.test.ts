// src/platform/ is the only code that knows which runtime it is on.
import { expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const src = join(import.meta.dir, "../../src");
const files = (dir: string): string[] =>
  readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? files(join(dir, f)) : f.endsWith(".ts") ? [join(dir, f)] : []));

const RUNTIME_SPECIFIC = [
  /["']bun:[a-z]+["']/, // bun:sqlite, bun:ffi …
  /\bBun\./,
  /\bDeno\./,
  /["']better-sqlite3["']/,
  /["']node:sqlite["']/,
  /["']node:worker_threads["']/,
  /["']hono\/(bun|deno)["']/,
  /["']@hono\/node-server["']/,
  /new Worker\(/,
  /with \{ type: /, // Bun's file and text imports
];

test("no file outside src/platform/ imports a runtime's own modules, globals, SQLite driver, workers or file imports", () => {
  const offenders = files(src)
    .filter((f) => !relative(src, f).startsWith("platform/"))
    .flatMap((f) => {
      const code = readFileSync(f, "utf8").replace(/^\s*(\/\/|\*).*$/gm, "");
      return RUNTIME_SPECIFIC.filter((re) => re.test(code)).map((re) => `${relative(src, f)}: ${re}`);
    });
  expect(offenders).toEqual([]);
});
