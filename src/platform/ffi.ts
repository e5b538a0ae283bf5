// Loading a shared library into the process by path, so an addon that links
// against its soname finds the copy already loaded.
import { dirname } from "node:path";
import { deno, runtimeName } from "./runtime";

export function dlopenGlobal(path: string, symbol: string): void {
  if (runtimeName === "bun") {
    // Imported lazily: bun:ffi exists only under Bun.
    const { dlopen, FFIType } = require("bun:ffi") as typeof import("bun:ffi");
    dlopen(path, { [symbol]: { args: [], returns: FFIType.ptr } });
    return;
  }
  if (runtimeName === "deno") {
    deno().dlopen(path, { [symbol]: { parameters: [], result: "pointer" } });
    return;
  }
  // Node has no FFI of its own. The dynamic loader still resolves the soname from a
  // directory on LD_LIBRARY_PATH before the addon's RUNPATH ($ORIGIN), so that works.
  if ((process.env.LD_LIBRARY_PATH ?? "").split(":").includes(dirname(path))) return;
  throw new Error(`loading ${path} needs Bun or Deno; under Node, also put its directory on LD_LIBRARY_PATH`);
}
