// Hashes one file in its own thread: a 400 MB model hashed on the HTTP thread
// measurably delays every other request (DEVELOPERS.md, fact 4).
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { parentPort } from "../platform/threads";

const parent = parentPort();

parent.onMessage((data) => {
  const h = createHash("sha256");
  createReadStream((data as { path: string }).path, { highWaterMark: 1024 * 1024 })
    .on("data", (c) => h.update(c))
    .on("error", (err) => finish({ error: err.message }))
    .on("end", () => finish({ sha256: h.digest("hex") }));
});

function finish(msg: { sha256: string } | { error: string }): void {
  parent.postMessage(msg);
  // Ends this worker thread only; nothing native is running here.
  parent.exit();
}
