// JSON work too large for the HTTP thread (DEVELOPERS.md, fact 4): JSON.parse of a
// 530 kB body of 27,648 numbers takes 1.5 ms there, and a 17 MB body or a 4 MB
// tensor's JSON response holds it for 100+ ms while every other request waits.
// Parsed bodies come back with each input's data packed in its declared datatype,
// as the binary extension sends it; texts go out with tensors' values written in.
import { parentPort } from "../platform/threads";
import type { WireTensor } from "./protocol";
import { jsonDataText, packJsonData } from "./tensors";

export type ToJsonWorker =
  | { type: "decode"; id: number; bytes: ArrayBuffer }
  /** Text pieces and tensors, written one after the other: each tensor as the JSON array of its values. */
  | { type: "encode"; id: number; pieces: (string | WireTensor)[] }
  | { type: "exit" };
export type FromJsonWorker =
  /** `packed[i]`: input i's data as bytes, taken out of `value`; absent where the request's own checks must speak. */
  | { id: number; value: unknown; packed: (ArrayBuffer | undefined)[] }
  /** Not JSON, or JSON nested too deeply to be handed back. */
  | { id: number; invalid: DecodeRefusal }
  /** The pieces written out, as UTF-8. */
  | { id: number; text: Uint8Array<ArrayBuffer> }
  /** Anything else that went wrong with this one message. */
  | { id: number; failed: string };
export type DecodeRefusal = "malformed" | "too-deep";

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
    return parent.postMessage({ id, invalid: "malformed" } satisfies FromJsonWorker);
  }
  const packed = packInputs(value);
  try {
    parent.postMessage({ id, value, packed } satisfies FromJsonWorker, packed.filter((b): b is ArrayBuffer => b !== undefined));
  } catch (err) {
    // Structured cloning recurses, and a worker's stack is small: a body nested a few
    // thousand deep (where it could not be packed) overflows it.
    if (!(err instanceof RangeError)) throw err;
    parent.postMessage({ id, invalid: "too-deep" } satisfies FromJsonWorker);
  }
}

// One buffer of bytes, not strings: a transferred buffer crosses without a copy, and the
// HTTP thread neither encodes a large text to UTF-8 nor allocates and fills a large buffer,
// whose fresh pages alone cost it tens of ms for a 17 MB response on this host.
function encode(id: number, pieces: (string | WireTensor)[]): void {
  const text = new TextEncoder().encode(pieces.map((p) => (typeof p === "string" ? p : jsonDataText(p))).join(""));
  parent.postMessage({ id, text } satisfies FromJsonWorker, [text.buffer as ArrayBuffer]);
}

parent.onMessage((data) => {
  const msg = data as ToJsonWorker;
  if (msg.type === "exit") return parent.exit(); // ends this thread only; nothing native runs here
  // Every large request shares this thread: whatever one message does wrong fails that message alone.
  try {
    if (msg.type === "decode") decode(msg.id, msg.bytes);
    else encode(msg.id, msg.pieces);
  } catch (err) {
    parent.postMessage({ id: msg.id, failed: String((err as Error)?.message ?? err) } satisfies FromJsonWorker);
  }
});
