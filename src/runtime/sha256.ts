import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";

/** Streams the file through sha256, so even a large model never blocks its thread for long. */
export function sha256File(path: string): Promise<string> {
  return new Promise((ok, fail) => {
    const h = createHash("sha256");
    // 256 KiB chunks: each hash step stays well under a millisecond on the calling thread.
    createReadStream(path, { highWaterMark: 256 * 1024 })
      .on("data", (c) => h.update(c))
      .on("error", fail)
      .on("end", () => ok(h.digest("hex")));
  });
}
