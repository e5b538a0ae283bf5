// npm run build: one self-contained executable at dist/modeld (or the path given). The worker is a
// second entrypoint (and so is the hash worker; Bun does not find `new Worker(url)` targets on its own);
// migrations, the Scalar script, the demo model and libonnxruntime.so.1 are
// embedded through their `with { type: ... }` imports.
import { statSync } from "node:fs";
import { join, resolve } from "node:path";

const outfile = resolve(process.argv[2] ?? "dist/modeld");
process.chdir(join(import.meta.dir, "..")); // entry paths are relative to the repo
const result = await Bun.build({
  entrypoints: ["src/main.ts", "src/runtime/session-worker.ts", "src/runtime/hash-worker.ts"],
  compile: { outfile },
  // Node's driver; the binary always runs under Bun and uses bun:sqlite.
  external: ["better-sqlite3"],
  minify: true,
  sourcemap: "none",
});
if (!result.success) {
  for (const log of result.logs) console.error(log);
  process.exit(1);
}
console.log(`built ${outfile} (${(statSync(outfile).size / 1024 / 1024).toFixed(1)} MiB)`);
