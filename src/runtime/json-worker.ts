// Parses large JSON inference bodies off the HTTP thread (DEVELOPERS.md, fact 4):
// JSON.parse of a 530 kB body of 27,648 numbers takes 1.5 ms there, of a 17 MB one
// hundreds of ms, and every other request waits meanwhile. Each input's data
// comes back packed in its declared datatype, as the binary extension sends it.
import { parentPort } from "../platform/threads";
import { packJsonData } from "./tensors";

export type ToJsonWorker = { type: "decode"; id: number; bytes: ArrayBuffer } | { type: "exit" };
/** `packed[i]`: input i's data as bytes, taken out of `value`; absent where the request's own checks must speak. */
export type FromJsonWorker = { id: number; value: unknown; packed: (ArrayBuffer | undefined)[] } | { id: number; malformed: true };

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

parent.onMessage((data) => {
  const msg = data as ToJsonWorker;
  // Ends this thread only; nothing native runs here.
  if (msg.type === "exit") return parent.exit();
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(msg.bytes));
  } catch {
    return parent.postMessage({ id: msg.id, malformed: true } satisfies FromJsonWorker);
  }
  const packed = packInputs(value);
  parent.postMessage({ id: msg.id, value, packed } satisfies FromJsonWorker, packed.filter((b): b is ArrayBuffer => b !== undefined));
});
