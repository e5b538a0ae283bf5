// Worker threads on each runtime, behind one contract: messages both ways
// (structured clone, ArrayBuffers transferable, SharedArrayBuffers shared),
// "error" for an uncaught error in the thread, and "exit" exactly once when the
// thread has ended, whatever ended it. Threads are never terminated from
// outside (DEVELOPERS.md, fact 5): they exit themselves through parentPort().
import { parentPort as nodeParentPort, Worker as NodeWorker } from "node:worker_threads";
import { fileURLToPath } from "node:url";
import { isCompiledBinary } from "./assets";
import { runtimeName } from "./runtime";

export type ThreadEntry = "session-worker" | "hash-worker" | "json-worker";

export interface Thread {
  postMessage(msg: unknown, transfer?: ArrayBuffer[]): void;
  onMessage(handler: (data: unknown) => void): void;
  onError(handler: (message: string) => void): void;
  /** Called once the thread has ended; at once when it already has. */
  onExit(handler: () => void): void;
}

/** Sent by a Deno thread just before it closes itself: Deno's Worker has no exit event. */
const EXITING = "__modeld_thread_exiting";

/**
 * From source, entries sit in src/runtime/ as .ts files. In the compiled binary
 * they are embedded under the entries' common root (src/); in the Node/Deno
 * bundle they are built beside main.js under runtime/ (scripts/build.ts lists them).
 */
export function threadUrl(entry: ThreadEntry): string {
  // Bytecode builds keep the source path in import.meta.url, so ask the embedded assets instead.
  if (isCompiledBinary()) return `./runtime/${entry}.ts`;
  if (import.meta.url.endsWith(".ts")) return new URL(`../runtime/${entry}.ts`, import.meta.url).href;
  return new URL(`./runtime/${entry}.js`, import.meta.url).href;
}

function once(f: () => void): () => void {
  let done = false;
  return () => {
    if (!done) (done = true), f();
  };
}

export function spawnThread(entry: ThreadEntry): Thread {
  const url = threadUrl(entry);
  const exitHandlers: (() => void)[] = [];
  let gone = false;
  const exited = once(() => ((gone = true), exitHandlers.forEach((h) => h())));
  const onExit = (h: () => void) => (gone ? h() : void exitHandlers.push(h));
  if (runtimeName === "node") {
    const w = new NodeWorker(fileURLToPath(url));
    w.on("exit", exited);
    return {
      postMessage: (msg, transfer) => w.postMessage(msg, transfer),
      onMessage: (h) => void w.on("message", h),
      onError: (h) => void w.on("error", (e: Error) => h(e.message)),
      onExit,
    };
  }
  const w = new Worker(url, { type: "module" });
  const messageHandlers: ((data: unknown) => void)[] = [];
  w.onmessage = (e: MessageEvent) => {
    if (e.data === EXITING) return exited();
    for (const h of messageHandlers) h(e.data);
  };
  const errorHandlers: ((message: string) => void)[] = [];
  w.addEventListener("error", (e) => {
    // Deno rethrows an unhandled worker error in the parent and ends the process; the thread is gone either way.
    e.preventDefault();
    for (const h of errorHandlers) h((e as ErrorEvent).message);
    if (runtimeName === "deno") exited();
  });
  if (runtimeName === "bun") w.addEventListener("close", exited);
  return {
    postMessage: (msg, transfer = []) => w.postMessage(msg, transfer),
    onMessage: (h) => void messageHandlers.push(h),
    onError: (h) => void errorHandlers.push(h),
    onExit,
  };
}

/** The thread side: the parent's messages, and a way to end this thread (never the process). */
export interface ParentPort {
  postMessage(msg: unknown, transfer?: ArrayBuffer[]): void;
  onMessage(handler: (data: unknown) => void): void;
  exit(): void;
}

export function parentPort(): ParentPort {
  if (runtimeName === "node") {
    const port = nodeParentPort!;
    return {
      postMessage: (msg, transfer = []) => port.postMessage(msg, transfer),
      onMessage: (h) => void port.on("message", h),
      // In a worker_threads thread, process.exit ends the thread only.
      exit: () => process.exit(0),
    };
  }
  const self = globalThis as unknown as { postMessage(m: unknown, t?: ArrayBuffer[]): void; onmessage: ((e: MessageEvent) => void) | null; close(): void };
  return {
    postMessage: (msg, transfer = []) => self.postMessage(msg, transfer),
    onMessage: (h) => void (self.onmessage = (e) => h(e.data)),
    exit: () => {
      if (runtimeName === "deno") {
        self.postMessage(EXITING);
        self.close();
        return;
      }
      // Under Bun, process.exit in a Worker ends that thread only.
      process.exit(0);
    },
  };
}
