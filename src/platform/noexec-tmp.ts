// The compiled binary's addon is extracted into TMPDIR and dlopened, which fails
// ("failed to map segment from shared object") when TMPDIR is on a noexec mount,
// as /tmp often is on hardened hosts. Bun reads TMPDIR once at process start,
// so the binary re-executes itself (same PID, via execve) with TMPDIR under its
// cache dir before anything else happens.
import { mkdirSync, readFileSync, realpathSync } from "node:fs";
import { tmpdir } from "node:os";

const REEXEC_MARK = "_MODELD_REEXECUTED";

/** True when `dir` lives on a mount with the noexec option. */
export function onNoexecMount(dir: string, mountinfo = readFileSync("/proc/self/mountinfo", "utf8")): boolean {
  let real: string;
  try {
    real = realpathSync(dir);
  } catch {
    return false;
  }
  let best = { point: "", noexec: false };
  for (const line of mountinfo.split("\n")) {
    const f = line.split(" ");
    const point = f[4]?.replace(/\\040/g, " ");
    if (!point) continue;
    const covers = real === point || real.startsWith(point.endsWith("/") ? point : point + "/");
    if (covers && point.length >= best.point.length) best = { point, noexec: (f[5] ?? "").split(",").includes("noexec") };
  }
  return best.noexec;
}

function execve(path: string, argv: string[], env: Record<string, string>): void {
  const { dlopen, FFIType, ptr } = require("bun:ffi") as typeof import("bun:ffi");
  const libc = dlopen("libc.so.6", { execve: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 } });
  const keep: (Buffer | BigUint64Array)[] = [];
  const cstr = (s: string) => {
    const b = Buffer.from(s + "\0");
    keep.push(b);
    return b;
  };
  const list = (items: string[]) => {
    const a = new BigUint64Array(items.length + 1);
    items.forEach((s, i) => (a[i] = BigInt(ptr(cstr(s)))));
    keep.push(a);
    return a;
  };
  const envList = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  libc.symbols.execve(ptr(cstr(path)), ptr(list(argv)), ptr(list(envList)));
  // Only reached when execve failed.
}

/** In the compiled binary, restarts this process with TMPDIR under `cacheDir` if TMPDIR is noexec. */
export function escapeNoexecTmp(cacheDir: string, log: (msg: string) => void): void {
  if (process.env[REEXEC_MARK] || !onNoexecMount(tmpdir())) return;
  const ownTmp = `${cacheDir}/tmp`;
  mkdirSync(ownTmp, { recursive: true, mode: 0o700 });
  log(`${tmpdir()} is mounted noexec; restarting with TMPDIR=${ownTmp}`);
  const env = { ...(process.env as Record<string, string>), TMPDIR: ownTmp, [REEXEC_MARK]: "1" };
  execve(process.execPath, [process.execPath, ...process.argv.slice(2)], env);
  log("could not restart with another TMPDIR; set TMPDIR to a directory that allows executables");
}
