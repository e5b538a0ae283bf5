// The environment modeld ships with, read from the files that ship it, so the
// benchmarks measure what operators run and a test keeps the unit and the image agreed.
import { readFileSync } from "node:fs";
import { join } from "node:path";

const deployDir = join(import.meta.dir, "..", "deploy");

/** The unit's `Environment=NAME=value` lines whose names start with `prefix`. */
export function unitEnvironment(prefix: string): Record<string, string> {
  const unit = readFileSync(join(deployDir, "modeld.service"), "utf8");
  return Object.fromEntries([...unit.matchAll(/^Environment=([A-Z_]+)=(\S*)$/gm)].filter((m) => m[1]!.startsWith(prefix)).map((m) => [m[1]!, m[2]!]));
}

/** The image's `ENV NAME=value` pairs whose names start with `prefix`. */
export function imageEnvironment(prefix: string): Record<string, string> {
  const file = readFileSync(join(deployDir, "Containerfile"), "utf8");
  const env = /^ENV ((?:.*\\\n)*.*)$/m.exec(file)?.[1] ?? "";
  return Object.fromEntries([...env.matchAll(/([A-Z_]+)=(\S+)/g)].filter((m) => m[1]!.startsWith(prefix)).map((m) => [m[1]!, m[2]!]));
}

/** glibc's allocator settings as the unit sets them. */
export const shippedAllocatorEnv = (): Record<string, string> => unitEnvironment("MALLOC_");
