// JSON work too large for the HTTP thread (DEVELOPERS.md, fact 4): JSON.parse of a
// 530 kB body of 27,648 numbers takes 1.5 ms there, and a 17 MB body or a 4 MB
// tensor's JSON response holds it for 100+ ms while every other request waits.
// Parsed bodies come back with each input's data packed in its declared datatype,
// as the binary extension sends it; tensors go out as the JSON text of their values.
import { parentPort } from "../platform/threads";
import type { WireTensor } from "./protocol";
import { packJsonData, toJsonData } from "./tensors";

export type ToJsonWorker =
  | { type: "decode"; id: number; bytes: ArrayBuffer }
  | { type: "encode"; id: number; tensors: WireTensor[] }
  | { type: "exit" };
export type FromJsonWorker =
  /** `packed[i]`: input i's data as bytes, taken out of `value`; absent where the request's own checks must speak. */
  | { id: number; value: unknown; packed: (ArrayBuffer | undefined)[] }
  | { id: number; malformed: true }
  /** Per tensor, the JSON array of its values, flat and row-major, as UTF-8. */
  | { id: number; texts: Uint8Array[] };

const parent = parentPort();

function packInputs(value: unknown): (ArrayBuffer | undefined)[] {
  const inputs = (value as { inputs?: unknown } | null)?.inputs;
  if (!Array.isArray(inputs)) return [];
  return inputs.map((input: unknown) => {
    if (typeof input !== "object" || input === null) return undefined;
    const packed = packJsonData(input as Record<string, unknown>);
    if (packed) delete (input as { data?: unknown }).data;
    return packed;
  });
}

function decode(id: number, bytes: ArrayBuffer): void {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return parent.postMessage({ id, malformed: true } satisfies FromJsonWorker);
  }
  const packed = packInputs(value);
  parent.postMessage({ id, value, packed } satisfies FromJsonWorker, packed.filter((b): b is ArrayBuffer => b !== undefined));
}

// Bytes, not strings: a transferred buffer crosses without a copy, and the HTTP thread
// need not encode a large text to UTF-8 itself.
function encode(id: number, tensors: WireTensor[]): void {
  const encoder = new TextEncoder();
  const texts = tensors.map((t) => encoder.encode(JSON.stringify(toJsonData(t))));
  parent.postMessage({ id, texts } satisfies FromJsonWorker, texts.map((b) => b.buffer as ArrayBuffer));
}

parent.onMessage((data) => {
  const msg = data as ToJsonWorker;
  if (msg.type === "decode") decode(msg.id, msg.bytes);
  else if (msg.type === "encode") encode(msg.id, msg.tensors);
  // Ends this thread only; nothing native runs here.
  else parent.exit();
});
