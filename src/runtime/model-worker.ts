// One loaded model: its Worker, its in-flight runs and its lifecycle. State and
// lifecycle really live together here, hence a class.
import type { TensorInfo } from "../db/models.repo";
import { JobError } from "../jobs/states";
import { transferList, type FromWorker, type LoadRequest, type ToWorker, type WireTensor } from "./protocol";

export type WorkerPhase = "starting" | "loading" | "ready" | "draining" | "closed";

export class RuntimeError extends Error {
  constructor(
    readonly reason: "NOT_READY" | "UNLOADING" | "TERMINATED" | "QUEUE_FULL" | "RUN_FAILED",
    message: string,
  ) {
    super(message);
  }
}

export interface LoadedInfo {
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  providers: string[];
}

interface Pending {
  resolve: (v: WireTensor[]) => void;
  reject: (e: Error) => void;
}

/**
 * From source the worker sits beside this file. In the compiled binary this
 * module is bundled into the main entry, and the worker entry is embedded
 * under the entries' common root (src/), where it is found by a relative path.
 */
const workerUrl = import.meta.url.includes("$bunfs")
  ? "./runtime/session-worker.ts"
  : new URL("./session-worker.ts", import.meta.url).href;

export class ModelWorker {
  #worker: Worker;
  #phase: WorkerPhase = "starting";
  #runs = new Map<number, Pending>();
  #nextRunId = 1;
  #onLoad?: { resolve: (i: LoadedInfo) => void; reject: (e: Error) => void };
  #onReleased?: () => void;
  #idleWaiters: (() => void)[] = [];
  #closed: Promise<void>;
  #markClosed!: () => void;
  info?: LoadedInfo;

  constructor(
    readonly modelId: string,
    private readonly opts: { maxQueue: number; onExit: (w: ModelWorker, unexpected: boolean) => void },
  ) {
    this.#closed = new Promise((r) => (this.#markClosed = r));
    this.#worker = new Worker(workerUrl);
    this.#worker.onmessage = (e: MessageEvent<FromWorker>) => this.#handle(e.data);
    this.#worker.addEventListener("error", (e) => this.#die(new RuntimeError("TERMINATED", `worker crashed: ${(e as ErrorEvent).message}`)));
    this.#worker.addEventListener("close", () => this.#die(new RuntimeError("TERMINATED", "worker exited")));
  }

  get phase(): WorkerPhase {
    return this.#phase;
  }

  get inflight(): number {
    return this.#runs.size;
  }

  /** Resolves once the session exists; on timeout the worker is terminated and its memory freed. */
  load(req: LoadRequest, timeoutMs: number): Promise<LoadedInfo> {
    this.#phase = "loading";
    return new Promise<LoadedInfo>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.terminate(new JobError("LOAD_TIMEOUT", `load did not finish within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#onLoad = {
        resolve: (i) => (clearTimeout(timer), resolve(i)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
      this.#send({ type: "load", ...req });
    });
  }

  run(inputs: WireTensor[], outputs?: string[]): Promise<WireTensor[]> {
    if (this.#phase === "draining") return Promise.reject(new RuntimeError("UNLOADING", `model ${this.modelId} is unloading`));
    if (this.#phase !== "ready") return Promise.reject(new RuntimeError("NOT_READY", `model ${this.modelId} is not loaded`));
    if (this.#runs.size >= this.opts.maxQueue) {
      return Promise.reject(new RuntimeError("QUEUE_FULL", `model ${this.modelId} has ${this.#runs.size} requests in flight`));
    }
    const id = this.#nextRunId++;
    return new Promise((resolve, reject) => {
      this.#runs.set(id, { resolve, reject });
      this.#send({ type: "run", id, inputs, outputs }, transferList(inputs));
    });
  }

  /**
   * Stops taking requests, lets in-flight ones finish (up to timeoutMs), then
   * releases the session. Returns "forced" if it had to terminate instead.
   */
  async release(timeoutMs: number): Promise<"released" | "forced"> {
    if (this.#phase === "closed") return "forced";
    this.#phase = "draining";
    const deadline = Date.now() + timeoutMs;
    const timeout = () => new Promise<"timeout">((r) => setTimeout(() => r("timeout"), Math.max(0, deadline - Date.now())));
    const closed = this.#closed.then(() => "closed" as const);
    if (this.#runs.size > 0) {
      const idle = new Promise<"idle">((r) => this.#idleWaiters.push(() => r("idle")));
      if ((await Promise.race([idle, timeout(), closed])) !== "idle") return this.#forceAfter(timeoutMs);
    }
    const released = new Promise<"released">((r) => (this.#onReleased = () => r("released")));
    this.#send({ type: "release" });
    if ((await Promise.race([released, timeout(), closed])) !== "released") return this.#forceAfter(timeoutMs);
    this.terminate(new RuntimeError("TERMINATED", `model ${this.modelId} was unloaded`));
    return "released";
  }

  #forceAfter(timeoutMs: number): "forced" {
    this.terminate(new RuntimeError("TERMINATED", `model ${this.modelId} was force-unloaded after ${timeoutMs} ms`));
    return "forced";
  }

  /** Ends the worker now: pending runs and a pending load fail with `reason`. */
  terminate(reason: Error): void {
    if (this.#phase === "closed") return;
    this.#worker.terminate();
    this.#die(reason, true);
  }

  /** Resolves when the worker is gone. */
  closed(): Promise<void> {
    return this.#closed;
  }

  #send(msg: ToWorker, transfer: ArrayBuffer[] = []): void {
    this.#worker.postMessage(msg, transfer);
  }

  #handle(msg: FromWorker): void {
    switch (msg.type) {
      case "loaded":
        this.#phase = "ready";
        this.info = { inputs: msg.inputs, outputs: msg.outputs, providers: msg.providers };
        this.#onLoad?.resolve(this.info);
        this.#onLoad = undefined;
        break;
      case "load-error":
        this.#onLoad?.reject(new JobError(msg.code, msg.message));
        this.#onLoad = undefined;
        this.terminate(new RuntimeError("TERMINATED", "load failed"));
        break;
      case "result":
      case "run-error": {
        const p = this.#runs.get(msg.id);
        this.#runs.delete(msg.id);
        if (this.#runs.size === 0) for (const w of this.#idleWaiters.splice(0)) w();
        if (msg.type === "result") p?.resolve(msg.outputs);
        else p?.reject(new RuntimeError("RUN_FAILED", msg.message));
        break;
      }
      case "released":
        this.#onReleased?.();
        break;
    }
  }

  #die(reason: Error, expected = false): void {
    if (this.#phase === "closed") return;
    const wasServing = this.#phase === "ready" || this.#phase === "draining";
    this.#phase = "closed";
    this.#onLoad?.reject(reason);
    this.#onLoad = undefined;
    for (const p of this.#runs.values()) p.reject(reason);
    this.#runs.clear();
    this.#markClosed();
    this.opts.onExit(this, !expected && wasServing);
  }
}
