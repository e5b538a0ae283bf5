// Hashes one file in its own thread: a 400 MB model hashed on the HTTP thread
// measurably delays every other request (DEVELOPERS.md, fact 4).
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";

declare const self: Worker;

self.onmessage = (event: MessageEvent<{ path: string }>) => {
  const h = createHash("sha256");
  createReadStream(event.data.path, { highWaterMark: 1024 * 1024 })
    .on("data", (c) => h.update(c))
    .on("error", (err) => finish({ error: err.message }))
    .on("end", () => finish({ sha256: h.digest("hex") }));
};

function finish(msg: { sha256: string } | { error: string }): void {
  self.postMessage(msg);
  // Ends this worker thread only; nothing native is running here.
  process.exit(0);
}
