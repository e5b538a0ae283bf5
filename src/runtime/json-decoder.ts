// The HTTP thread's side of json-worker.ts: one thread, started at the first large
// body and kept, so a request pays a message round trip and no thread start.
import { spawnThread, type Thread } from "../platform/threads";
import type { FromJsonWorker, ToJsonWorker } from "./json-worker";

export interface DecodedJson {
  value: unknown;
  /** Per input of `value.inputs`: its data as bytes, taken out of `value`, where it could be packed. */
  packed: (ArrayBuffer | undefined)[];
}

export class JsonDecoder {
  #thread?: Thread;
  #pending = new Map<number, { resolve: (d: DecodedJson | undefined) => void; reject: (e: Error) => void }>();
  #nextId = 1;
  #closed = false;

  /** The parsed body with its inputs' data packed, or undefined when it is not JSON. The bytes are handed over. */
  decode(bytes: ArrayBuffer): Promise<DecodedJson | undefined> {
    if (this.#closed) return Promise.reject(new Error("the JSON decoder is closed"));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#send({ type: "decode", id, bytes }, [bytes]);
    });
  }

  /** Asks the thread to exit; it holds nothing worth waiting for. */
  close(): void {
    this.#closed = true;
    this.#fail(new Error("the JSON decoder closed"));
    this.#thread?.postMessage({ type: "exit" } satisfies ToJsonWorker);
    this.#thread = undefined;
  }

  #send(msg: ToJsonWorker, transfer: ArrayBuffer[]): void {
    this.#thread ??= this.#start();
    this.#thread.postMessage(msg, transfer);
  }

  #start(): Thread {
    const thread = spawnThread("json-worker");
    thread.onMessage((data) => {
      const msg = data as FromJsonWorker;
      const p = this.#pending.get(msg.id);
      this.#pending.delete(msg.id);
      p?.resolve("malformed" in msg ? undefined : { value: msg.value, packed: msg.packed });
    });
    // Whatever ended it, the next body starts a new thread.
    const gone = (why: string) => {
      if (this.#thread === thread) this.#thread = undefined;
      this.#fail(new Error(`the JSON decoder thread ${why}`));
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
