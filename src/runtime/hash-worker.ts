// Reads model files in its own thread: a 400 MB model hashed on the HTTP thread
// measurably delays every other request (DEVELOPERS.md, fact 4), and so does
// walking a model with thousands of tensors for its external data.
import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { parentPort } from "../platform/threads";
import { externalDataLocations, unsafeLocation } from "./external-data";

export type ToHashWorker =
  /** One digest of the files' bytes, one file after the other: a model file, then its external data files (one not there adds nothing). */
  | { paths: string[] }
  /** The external data files the model names and may read (see unsafeLocation), each once, in the order named. */
  | { externalDataOf: string }
  /** No more questions: the thread ends. */
  | { done: true };
export type FromHashWorker = { sha256: string } | { locations: string[] } | { error: string };

const parent = parentPort();

function hashInto(h: Hash, path: string, mayBeMissing: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    createReadStream(path, { highWaterMark: 1024 * 1024 })
      .on("data", (c) => h.update(c))
      .on("error", (err: NodeJS.ErrnoException) => (mayBeMissing && err.code === "ENOENT" ? resolve() : reject(err)))
      .on("end", resolve);
  });
}

async function answer(msg: Exclude<ToHashWorker, { done: true }>): Promise<FromHashWorker> {
  if ("externalDataOf" in msg) {
    const path = msg.externalDataOf;
    let named: string[];
    try {
      named = externalDataLocations(path);
    } catch {
      return { locations: [] }; // not a model ONNX Runtime can parse: its load says why
    }
    // A location with a line break could not be recorded in a version's identity (one line per file).
    return { locations: [...new Set(named)].filter((l) => !l.includes("\n") && unsafeLocation(path, l) === null) };
  }
  const h = createHash("sha256");
  for (const [i, path] of msg.paths.entries()) await hashInto(h, path, i > 0);
  return { sha256: h.digest("hex") };
}

// One question at a time; the asker says when it is done, or its last answer was an error.
parent.onMessage((data) => {
  const msg = data as ToHashWorker;
  // Ends this worker thread only; nothing native is running here.
  if ("done" in msg) return parent.exit();
  answer(msg).then(
    (reply) => parent.postMessage(reply),
    (err: Error) => {
      parent.postMessage({ error: err.message } satisfies FromHashWorker);
      parent.exit();
    },
  );
});
