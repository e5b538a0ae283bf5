import { spawnThread } from "../platform/threads";

/** The file's sha256, computed in a worker thread so the caller's thread never hashes. */
export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const worker = spawnThread("hash-worker");
    let answered = false;
    worker.onMessage((data) => {
      const msg = data as { sha256: string } | { error: string };
      answered = true;
      if ("sha256" in msg) resolve(msg.sha256);
      else reject(new Error(msg.error));
    });
    worker.onError((message) => reject(new Error(`hashing ${path} failed: ${message}`)));
    worker.onExit(() => {
      if (!answered) reject(new Error(`hashing ${path} failed: the hash worker exited`));
    });
    worker.postMessage({ path });
  });
}
