// Makes libonnxruntime.so.1 loadable before any worker imports onnxruntime-node.
// In the compiled binary the .node addon is embedded but the shared library it
// links against is not (DEVELOPERS.md, fact 3): we embed it as a file asset,
// extract it once to the cache dir and dlopen it, so the addon's dependency on
// the soname resolves to the already-loaded copy.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { createRequire } from "node:module";
import { isCompiledBinary, ortLibPath } from "../platform/assets";
import { dlopenGlobal } from "../platform/ffi";

export const ORT_LIB = "libonnxruntime.so.1";

export interface NativeRuntime {
  /** The directory whose libonnxruntime is in use; provider libraries are looked up beside it. */
  libDir: string;
  source: "package" | "embedded" | "external";
}


/** Where onnxruntime-node's own copy is, as its addon finds it. */
const packageLibDir = () => dirname(createRequire(import.meta.url).resolve(`onnxruntime-node/bin/napi-v6/linux/x64/${ORT_LIB}`));

/**
 * Writes bytes to `dir/name` unless present; write-then-rename so a concurrent
 * reader never sees half a file. A failed write (a full disk) removes its part,
 * which would otherwise keep the disk full, and says which dir it was.
 */
export function extractOnce(dir: string, name: string, bytes: () => Uint8Array): string {
  const target = join(dir, name);
  if (existsSync(target)) return target;
  const tmp = `${target}.${process.pid}.${Date.now()}.tmp`;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    writeFileSync(tmp, bytes(), { mode: 0o755 });
    renameSync(tmp, target);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new Error(`cannot write ${name} into ${dir} (MODELD_CACHE_DIR): ${(err as Error).message}`);
  }
  return target;
}

const dlopenOrt = (path: string) => dlopenGlobal(path, "OrtGetApiBase");

const pidAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
};

/**
 * ONNX Runtime drops an empty mat-debug-<pid>.log into TMPDIR on every start;
 * the binary removes those of processes that are gone, so launches leak nothing.
 */
function removeStaleOrtLogs(dir: string): void {
  for (const f of readdirSync(dir)) {
    const pid = /^mat-debug-(\d+)\.log$/.exec(f)?.[1];
    if (pid && !pidAlive(Number(pid))) rmSync(join(dir, f), { force: true });
  }
}

export function prepareNativeRuntime(opts: { ortDir?: string; cacheDir: string }): NativeRuntime {
  if (opts.ortDir) {
    const lib = join(opts.ortDir, ORT_LIB);
    if (!existsSync(lib)) throw new Error(`MODELD_ORT_DIR: ${lib} does not exist`);
    dlopenOrt(lib);
    return { libDir: opts.ortDir, source: "external" };
  }
  if (!isCompiledBinary()) return { libDir: packageLibDir(), source: "package" };
  const embeddedLib = ortLibPath();
  removeStaleOrtLogs(tmpdir());
  // Bun names embedded assets by their content hash, so the name is a version key and
  // a warm start neither reads nor hashes 45 MB. The size check catches a torn file.
  const dir = join(opts.cacheDir, `onnxruntime-${basename(embeddedLib).replace(/[^A-Za-z0-9_.-]/g, "_")}`);
  const target = join(dir, ORT_LIB);
  if (existsSync(target) && statSync(target).size !== statSync(embeddedLib).size) rmSync(target, { force: true });
  const lib = extractOnce(dir, ORT_LIB, () => readFileSync(embeddedLib));
  dlopenOrt(lib);
  return { libDir: dir, source: "embedded" };
}

/** Execution providers whose shared library is present beside libonnxruntime. */
export function availableProviders(libDir: string): string[] {
  const files = existsSync(libDir) ? readdirSync(libDir) : [];
  const found = ["cpu"];
  if (files.includes("libonnxruntime_providers_cuda.so") && files.includes("libonnxruntime_providers_shared.so")) {
    found.unshift("cuda");
  }
  return found;
}
