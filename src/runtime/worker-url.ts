/**
 * Where a worker entry in src/runtime/ is. From source it sits beside this
 * file. In the compiled binary this module is bundled into the main entry, and
 * each worker entry is embedded under the entries' common root (src/), where
 * it is found by a relative path (scripts/build.ts lists the entries).
 */
export function runtimeWorkerUrl(file: string): string {
  return import.meta.url.includes("$bunfs") ? `./runtime/${file}` : new URL(`./${file}`, import.meta.url).href;
}
