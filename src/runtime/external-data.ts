// Finds every ONNX external-data location in a model file without loading it:
// a protobuf walk that reads only the few messages that can hold tensors and
// skips everything else (raw weights included) by seeking. Runs in the model's
// worker, before ONNX Runtime sees the file.
import { closeSync, openSync, readSync, realpathSync, fstatSync } from "node:fs";
import { dirname, isAbsolute, relative, resolve } from "node:path";

type Walker = (field: number, start: number, end: number) => void;

class FileReader {
  readonly fd: number;
  readonly size: number;
  #buf = Buffer.alloc(16);
  constructor(path: string) {
    this.fd = openSync(path, "r");
    this.size = fstatSync(this.fd).size;
  }
  bytes(pos: number, n: number): Buffer {
    const b = Buffer.alloc(n);
    readSync(this.fd, b, 0, n, pos);
    return b;
  }
  /** Reads a varint at pos; returns [value, nextPos]. */
  varint(pos: number): [number, number] {
    const n = readSync(this.fd, this.#buf, 0, 10, pos);
    let value = 0;
    let mul = 1;
    for (let i = 0; i < n; i++) {
      const b = this.#buf[i]!;
      value += (b & 0x7f) * mul;
      if (b < 0x80) return [value, pos + i + 1];
      mul *= 128;
    }
    throw new Error("truncated varint");
  }
  close() {
    closeSync(this.fd);
  }
}

/** Calls `onField` for each length-delimited field of the message in [start, end). */
function walk(r: FileReader, start: number, end: number, onField: Walker): void {
  let pos = start;
  while (pos < end) {
    const [key, p1] = r.varint(pos);
    const field = Math.floor(key / 8);
    const wire = key & 7;
    // No protobuf field is numbered 0. A file of zeros (a preallocated download that never
    // finished) reads as one such field every two bytes: a minute of walking per 64 MiB.
    if (field === 0) throw new Error("not a protobuf: field number 0");
    if (wire === 0) pos = r.varint(p1)[1];
    else if (wire === 1) pos = p1 + 8;
    else if (wire === 5) pos = p1 + 4;
    else if (wire === 2) {
      const [len, p2] = r.varint(p1);
      if (p2 + len > end) throw new Error("field overruns its message");
      onField(field, p2, p2 + len);
      pos = p2 + len;
    } else throw new Error(`unsupported wire type ${wire}`);
  }
}

function tensorLocations(r: FileReader, start: number, end: number, out: string[]): void {
  walk(r, start, end, (f, s, e) => {
    if (f !== 13) return; // TensorProto.external_data: StringStringEntryProto
    let key = "";
    let value = "";
    walk(r, s, e, (ef, es, ee) => {
      if (ef === 1) key = r.bytes(es, ee - es).toString("utf8");
      if (ef === 2) value = r.bytes(es, ee - es).toString("utf8");
    });
    if (key === "location") out.push(value);
  });
}

function graphLocations(r: FileReader, start: number, end: number, out: string[], depth: number): void {
  if (depth > 32) throw new Error("subgraphs nested too deeply");
  walk(r, start, end, (f, s, e) => {
    if (f === 5) tensorLocations(r, s, e, out); // initializer
    if (f === 15) walk(r, s, e, (sf, ss, se) => (sf === 1 || sf === 2) && tensorLocations(r, ss, se, out)); // sparse_initializer
    if (f === 1) {
      // node -> attribute -> t / tensors / g / graphs
      walk(r, s, e, (nf, ns, ne) => {
        if (nf !== 5) return;
        walk(r, ns, ne, (af, as, ae) => {
          if (af === 5 || af === 10) tensorLocations(r, as, ae, out);
          if (af === 6 || af === 11) graphLocations(r, as, ae, out, depth + 1);
        });
      });
    }
  });
}

/** Every external-data location the model names. Throws if the file is not a parseable protobuf. */
export function externalDataLocations(modelPath: string): string[] {
  const r = new FileReader(modelPath);
  try {
    const out: string[] = [];
    walk(r, 0, r.size, (f, s, e) => f === 7 && graphLocations(r, s, e, out, 0)); // ModelProto.graph
    return out;
  } finally {
    r.close();
  }
}

/** The reason a location is unsafe, or null: it must stay inside the model file's directory. */
export function unsafeLocation(modelPath: string, location: string): string | null {
  if (isAbsolute(location)) return `absolute path ${location}`;
  if (location.split(/[\\/]/).includes("..")) return `path with ".." ${location}`;
  const dir = realpathSync(dirname(modelPath));
  let real: string;
  try {
    real = realpathSync(resolve(dir, location));
  } catch {
    return null; // missing: ONNX Runtime reports it with its own message
  }
  const rel = relative(dir, real);
  return rel.startsWith("..") || isAbsolute(rel) ? `${location} resolves outside the model's directory through a symlink` : null;
}
