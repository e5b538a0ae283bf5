import { spawnThread } from "../platform/threads";
import type { FromHashWorker, ToHashWorker } from "./hash-worker";

/** Asks a hash worker of its own, so the caller's thread never reads a model. */
function askHashWorker(msg: ToHashWorker, what: string): Promise<FromHashWorker> {
  return new Promise((resolve, reject) => {
    const worker = spawnThread("hash-worker");
    let answered = false;
    worker.onMessage((data) => {
      answered = true;
      const reply = data as FromHashWorker;
      if ("error" in reply) reject(new Error(reply.error));
      else resolve(reply);
    });
    worker.onError((message) => reject(new Error(`${what} failed: ${message}`)));
    worker.onExit(() => {
      if (!answered) reject(new Error(`${what} failed: the hash worker exited`));
    });
    worker.postMessage(msg);
  });
}

/** One sha256 over the files' bytes in order: a model file, then its external data files (one that is not there adds nothing). */
export async function sha256Files(paths: string[]): Promise<string> {
  return ((await askHashWorker({ paths }, `hashing ${paths[0]}`)) as { sha256: string }).sha256;
}

/** The external data locations the model names, each once, those it may read only. */
export async function externalDataFiles(modelPath: string): Promise<string[]> {
  return ((await askHashWorker({ externalDataOf: modelPath }, `reading ${modelPath}`)) as { locations: string[] }).locations;
}
