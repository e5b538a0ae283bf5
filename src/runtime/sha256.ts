import { spawnThread } from "../platform/threads";
import type { FromHashWorker, ToHashWorker } from "./hash-worker";

type Question = Exclude<ToHashWorker, { done: true }>;

/** A hash worker's answers, one question at a time. */
export interface HashWorker {
  /** One sha256 over the files' bytes in order: a model file, then its external data files (one that is not there adds nothing). */
  sha256(paths: string[]): Promise<string>;
  /** The external data locations the model names, each once, those it may read only. */
  externalDataFiles(modelPath: string): Promise<string[]>;
}

/**
 * Runs `use` with a hash worker of its own, so the caller's thread never reads a
 * model; one thread for all of its questions, since starting one costs ~20 ms here.
 */
export async function withHashWorker<T>(use: (w: HashWorker) => Promise<T>): Promise<T> {
  const worker = spawnThread("hash-worker");
  let pending: { resolve: (r: FromHashWorker) => void; reject: (e: Error) => void; what: string } | undefined;
  const fail = (why: string) => {
    pending?.reject(new Error(`${pending.what} failed: ${why}`));
    pending = undefined;
  };
  worker.onMessage((data) => {
    const reply = data as FromHashWorker;
    const p = pending;
    pending = undefined;
    if ("error" in reply) p?.reject(new Error(reply.error));
    else p?.resolve(reply);
  });
  worker.onError(fail);
  worker.onExit(() => fail("the hash worker exited"));
  const ask = (msg: Question, what: string) =>
    new Promise<FromHashWorker>((resolve, reject) => {
      pending = { resolve, reject, what };
      worker.postMessage(msg);
    });
  try {
    return await use({
      sha256: async (paths) => ((await ask({ paths }, `hashing ${paths[0]}`)) as { sha256: string }).sha256,
      externalDataFiles: async (modelPath) => ((await ask({ externalDataOf: modelPath }, `reading ${modelPath}`)) as { locations: string[] }).locations,
    });
  } finally {
    // A worker that failed has ended already.
    try {
      worker.postMessage({ done: true } satisfies ToHashWorker);
    } catch {}
  }
}

/** One sha256 over a version's files, in a hash worker of its own (HashWorker.sha256). */
export const sha256Files = (paths: string[]): Promise<string> => withHashWorker((w) => w.sha256(paths));
