// npm run build: one self-contained executable at dist/modeld (or the path given).
// npm run build -- --portable: the JavaScript bundle Node and Deno run, in dist/portable/.
//
// The workers are extra entrypoints (Bun does not find `new Worker(url)`
// targets on its own); migrations, the Scalar script, the demo model and
// libonnxruntime.so.1 come in through their `with { type: ... }` imports:
// embedded in the binary, copied beside the bundle.
import { rmSync, statSync } from "node:fs";
import { join, resolve } from "node:path";

const entrypoints = ["src/main.ts", "src/runtime/session-worker.ts", "src/runtime/hash-worker.ts", "src/runtime/json-worker.ts"];
const portable = process.argv.includes("--portable");
const target = process.argv.slice(2).find((a) => !a.startsWith("--"));
process.chdir(join(import.meta.dir, "..")); // entry paths are relative to the repo

async function build(options: Parameters<typeof Bun.build>[0]): Promise<void> {
  const result = await Bun.build(options);
  if (!result.success) {
    for (const log of result.logs) console.error(log);
    process.exit(1);
  }
}

if (portable) {
  const outdir = resolve(target ?? "dist/portable");
  rmSync(outdir, { recursive: true, force: true });
  await build({
    entrypoints,
    outdir,
    target: "node",
    format: "esm",
    // Native addons load from node_modules at run time.
    external: ["onnxruntime-node", "better-sqlite3"],
    // Asset imports resolve relative to the bundle (see src/platform/assets.ts).
    naming: { entry: "[dir]/[name].[ext]", asset: "assets/[name]-[hash].[ext]" },
    sourcemap: "linked",
  });
  console.error(`built ${outdir}`);
} else {
  const outfile = resolve(target ?? "dist/modeld");
  await build({
    entrypoints,
    compile: { outfile },
    // Node's driver; the binary always runs under Bun and uses bun:sqlite.
    external: ["better-sqlite3"],
    minify: true,
    // Bytecode instead of source: the start skips parsing the bundled libraries.
    bytecode: true,
    sourcemap: "none",
  });
  console.log(`built ${outfile} (${(statSync(outfile).size / 1024 / 1024).toFixed(1)} MiB)`);
}
