// The HTTP thread's side of json-worker.ts: one thread, started at the first large
// body or response and kept, so a request pays a message round trip and no thread start.
import { spawnThread, type Thread } from "../platform/threads";
import type { DecodeRefusal, FromJsonWorker, ToJsonWorker } from "./json-worker";
import { transferList, type WireTensor } from "./protocol";

export interface DecodedJson {
  value: unknown;
  /** Per input of `value.inputs`: its data as bytes, taken out of `value`, where it could be packed. */
  packed: (ArrayBuffer | undefined)[];
}

/** What decode answers: the body, or why it cannot be used. */
export type Decoded = DecodedJson | { invalid: DecodeRefusal };
type Reply = Decoded | Uint8Array<ArrayBuffer>;

export class JsonCodec {
  #thread?: Thread;
  #pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  #nextId = 1;
  #closed = false;

  /** The parsed body with its inputs' data packed, or why it cannot be used. The bytes are handed over. */
  decode(bytes: ArrayBuffer): Promise<Decoded> {
    return this.#ask((id) => ({ type: "decode", id, bytes }), [bytes]) as Promise<Decoded>;
  }

  /**
   * The pieces one after the other as UTF-8, each tensor as the JSON array of its values
   * (flat, row-major). The tensors' buffers are handed over.
   */
  encode(pieces: (string | WireTensor)[]): Promise<Uint8Array<ArrayBuffer>> {
    const tensors = pieces.filter((p): p is WireTensor => typeof p !== "string");
    return this.#ask((id) => ({ type: "encode", id, pieces }), transferList(tensors)) as Promise<Uint8Array<ArrayBuffer>>;
  }

  /** Asks the thread to exit; it holds nothing worth waiting for. */
  close(): void {
    this.#closed = true;
    this.#fail(new Error("the JSON codec closed"));
    this.#thread?.postMessage({ type: "exit" } satisfies ToJsonWorker);
    this.#thread = undefined;
  }

  #ask(msg: (id: number) => ToJsonWorker, transfer: ArrayBuffer[]): Promise<Reply> {
    if (this.#closed) return Promise.reject(new Error("the JSON codec is closed"));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#thread ??= this.#start();
      this.#thread.postMessage(msg(id), transfer);
    });
  }

  #start(): Thread {
    const thread = spawnThread("json-worker");
    thread.onMessage((data) => {
      const msg = data as FromJsonWorker;
      const p = this.#pending.get(msg.id);
      this.#pending.delete(msg.id);
      if ("failed" in msg) p?.reject(new Error(`the JSON codec failed: ${msg.failed}`));
      else if ("text" in msg) p?.resolve(msg.text);
      else p?.resolve("invalid" in msg ? { invalid: msg.invalid } : { value: msg.value, packed: msg.packed });
    });
    // Whatever ended it, the next call starts a new thread.
    const gone = (why: string) => {
      if (this.#thread === thread) this.#thread = undefined;
      this.#fail(new Error(`the JSON codec's thread ${why}`));
    };
    thread.onError((message) => gone(`failed: ${message}`));
    thread.onExit(() => gone("exited"));
    return thread;
  }

  #fail(err: Error): void {
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }
}
