// Loading a shared library into the process by path, so an addon that links
// against its soname finds the copy already loaded.
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
  // Node has no FFI of its own; onnxruntime-node's addon finds the library beside it.
  throw new Error(`loading ${path} needs Bun or Deno; under Node, start modeld with LD_LIBRARY_PATH pointing at its directory instead`);
}
