import { runtimeWorkerUrl } from "./worker-url";

/** The file's sha256, computed in a worker thread so the caller's thread never hashes. */
export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(runtimeWorkerUrl("hash-worker.ts"));
    let answered = false;
    worker.onmessage = (e: MessageEvent<{ sha256: string } | { error: string }>) => {
      answered = true;
      if ("sha256" in e.data) resolve(e.data.sha256);
      else reject(new Error(e.data.error));
    };
    worker.addEventListener("error", (e) => reject(new Error(`hashing ${path} failed: ${(e as ErrorEvent).message}`)));
    worker.addEventListener("close", () => {
      if (!answered) reject(new Error(`hashing ${path} failed: the hash worker exited`));
    });
    worker.postMessage({ path });
  });
}
