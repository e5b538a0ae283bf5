// One loaded model: its Worker, its in-flight runs and its lifecycle. State and
// lifecycle really live together here, hence a class.
//
// The thread is never terminate()d: that aborts the process when it lands
// while ONNX Runtime is in native code (see session-worker.ts). "Force" and
// timeouts therefore answer every caller at once and tell the worker to stop;
// the thread releases its session and exits as soon as the native call it is
// in returns.
import { monotonicMs } from "../clock";
import { spawnThread, type Thread } from "../platform/threads";
import type { BatchingSpec } from "./batching";
import { newDoorbell, requestStop, ring, spinForAnswer } from "./doorbell";
import { recentLeast } from "./recent-least";
import { MAX_ITEMS_PER_MESSAGE, transferList, type ExecutionTiming, type FromWorker, type LoadRequest, type RunItem, type TensorInfo, type ToWorker, type WireTensor } from "./protocol";

export type WorkerPhase = "starting" | "loading" | "ready" | "draining" | "closed";

/** The runtime's own vocabulary; callers translate it once, at their boundary. */
export type RuntimeErrorReason =
  | "NOT_READY" | "UNLOADING" | "TERMINATED" | "QUEUE_FULL" | "RUN_FAILED"
  | "LOAD_FAILED" | "LOAD_TIMEOUT" | "UNSAFE_EXTERNAL_DATA" | "WARMUP_FAILED" | "STOPPED";

export class RuntimeError extends Error {
  constructor(
    readonly reason: RuntimeErrorReason,
    message: string,
  ) {
    super(message);
  }
}

/** Which model version a session serves, and the settings it was created with. */
export interface SessionIdentity {
  modelId: string;
  version: string;
  /** An opaque fingerprint of the settings that need a new session when they change. */
  tag: string;
}

export interface LoadedInfo {
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  providers: string[];
  /** How this session merges requests into batches; absent when it does not. */
  batching?: BatchingSpec;
}

/** A run's outputs, and where its execution spent its time. */
export interface RunOutcome {
  outputs: WireTensor[];
  timing: ExecutionTiming;
}

interface Pending {
  resolve: (v: RunOutcome) => void;
  reject: (e: Error) => void;
}

/** A session worker thread, importing onnxruntime-node as it starts. */
export const spawnSessionWorker = (): Thread => spawnThread("session-worker");

/** A crash message can quote a whole minified bundle; keep the error line. */
function crashSummary(message: string): string {
  const line = message.split("\n").find((l) => /^\s*(error|\w*Error)\b/.test(l))?.trim();
  return (line ?? message).slice(0, 500);
}

/**
 * Lone runs in a row before the HTTP thread waits for one's answer awake: after
 * fewer, other clients may be sending too, and their requests would wait.
 */
const SEQUENTIAL_RUNS = 8;
/**
 * The most the HTTP thread waits awake for a lone run's answer, and so the most it
 * holds anything else back. A tiny model's answer came back in ~30 µs that way here.
 */
const ANSWER_WAIT_MS = 0.1;

export class ModelWorker {
  #worker: Thread;
  #bell = newDoorbell();
  #phase: WorkerPhase = "starting";
  #runs = new Map<number, Pending>();
  #nextRunId = 1;
  #onLoad?: { resolve: (i: LoadedInfo) => void; reject: (e: Error) => void };
  #onWarming?: () => void;
  #batching?: BatchingSpec;
  #idleWaiters: (() => void)[] = [];
  #outbox: RunItem[] = [];
  #exited: Promise<void>;
  /** Runs in a row that found nothing else in flight. */
  #loneStreak = 0;
  /** When the lone run in flight was sent (performance.now()); 0: none is. */
  #loneSentAt = 0;
  /** How long the last few lone runs' answers took to come back; none at first. */
  #loneTripsMs = recentLeast(4, Infinity);
  readonly #answerWaitMs: number;
  #threadGone = false;
  #exitRequested = false;
  info?: LoadedInfo;

  readonly modelId: string;
  readonly version: string;
  readonly tag: string;
  /** What this session counts against the memory budget: an estimate until measured. Set by its owner. */
  accountedBytes = 0;
  /** When a request last started or finished here (monotonicMs()); the load's end before any. */
  lastUsedAt = monotonicMs();

  constructor(
    identity: SessionIdentity,
    private readonly opts: {
      maxQueue: number;
      /**
       * MODELD_SPIN_US: having answered a lone request, the worker stays awake this
       * long for the next one instead of going to sleep (session-worker.ts, linger),
       * and the HTTP thread may wait awake for a lone request's answer (#sendLone),
       * up to ANSWER_WAIT_MS or this, whichever is less. 0: neither spins.
       */
      spinUs: number;
      /** Whether another session has requests in flight: the HTTP thread owes them its time. */
      othersBusy: (w: ModelWorker) => boolean;
      onClosed: (w: ModelWorker, crashed: boolean) => void;
      onExited: (w: ModelWorker) => void;
      /** A thread started ahead of time (see ModelRuntime's spare), or a new one. */
      thread?: Thread;
    },
  ) {
    this.modelId = identity.modelId;
    this.version = identity.version;
    this.tag = identity.tag;
    this.#answerWaitMs = Math.min(opts.spinUs / 1000, ANSWER_WAIT_MS);
    this.#worker = opts.thread ?? spawnSessionWorker();
    this.#worker.onMessage((data) => this.#handle(data as FromWorker));
    this.#worker.onError((message) => this.#close(new RuntimeError("TERMINATED", `worker crashed: ${crashSummary(message)}`), true));
    this.#exited = new Promise((resolve) =>
      this.#worker.onExit(() => {
        this.#threadGone = true;
        this.#close(new RuntimeError("TERMINATED", "worker exited"), !this.#exitRequested);
        this.opts.onExited(this);
        resolve();
      }),
    );
  }

  get phase(): WorkerPhase {
    return this.#phase;
  }

  get inflight(): number {
    return this.#runs.size;
  }

  /**
   * Resolves once the session exists and its warmup runs passed. On timeout the
   * caller is answered at once and the worker told to stop.
   */
  load(req: LoadRequest, timeoutMs: number, onWarming?: () => void): Promise<LoadedInfo> {
    this.#phase = "loading";
    this.#onWarming = onWarming;
    this.#batching = req.batching;
    return new Promise<LoadedInfo>((resolve, reject) => {
      const timer = setTimeout(
        () => this.stop(new RuntimeError("LOAD_TIMEOUT", `load did not finish within ${timeoutMs} ms; its worker releases the memory as soon as ONNX Runtime returns`)),
        timeoutMs,
      );
      this.#onLoad = {
        resolve: (i) => (clearTimeout(timer), resolve(i)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
      this.#send({ type: "load", doorbell: this.#bell.buffer as SharedArrayBuffer, spinUs: this.opts.spinUs, ...req });
    });
  }

  run(inputs: WireTensor[], outputs?: string[]): Promise<RunOutcome> {
    if (this.#phase === "draining") return Promise.reject(new RuntimeError("UNLOADING", `model ${this.modelId} is unloading`));
    if (this.#phase !== "ready") return Promise.reject(new RuntimeError("NOT_READY", `model ${this.modelId} is not loaded`));
    if (this.#runs.size >= this.opts.maxQueue) {
      return Promise.reject(new RuntimeError("QUEUE_FULL", `model ${this.modelId} has ${this.#runs.size} requests in flight`));
    }
    const id = this.#nextRunId++;
    this.lastUsedAt = monotonicMs();
    return new Promise((resolve, reject) => {
      this.#runs.set(id, { resolve, reject });
      const queued = this.#outbox.push({ id, inputs, outputs });
      // A run that finds nothing else in flight has nothing to wait for: the worker is idle.
      if (this.#runs.size === 1) return this.#sendLone();
      this.#loneStreak = 0;
      // Otherwise runs requested in the same turn of the event loop leave together (see
      // protocol.ts). A macrotask, not a microtask: the HTTP server runs each request's
      // handler in a task of its own, so only the end of the loop's turn gathers every
      // request that arrived together (at c=64: a third less HTTP-thread CPU per request).
      if (queued === 1) setImmediate(() => this.#flushRuns());
      // A session that merges runs wants them gathered; one that does not is better off
      // starting on the first ones while this thread still reads the rest of the turn.
      else if (queued >= MAX_ITEMS_PER_MESSAGE && !this.info?.batching) this.#flushRuns();
    });
  }

  /**
   * Stops taking requests, lets in-flight ones finish (up to timeoutMs), then
   * has the worker release the session and exit. "forced" when the bound ran
   * out and the remaining requests were failed instead.
   */
  async release(timeoutMs: number, onReleasing?: () => void): Promise<"released" | "forced"> {
    if (this.#phase === "closed") return "forced";
    this.#phase = "draining";
    const deadline = monotonicMs() + timeoutMs;
    const timeout = () => new Promise<"timeout">((r) => setTimeout(() => r("timeout"), Math.max(0, deadline - monotonicMs())));
    if (this.#runs.size > 0) {
      const idle = new Promise<"idle">((r) => this.#idleWaiters.push(() => r("idle")));
      if ((await Promise.race([idle, timeout()])) !== "idle") return this.#forceAfter(timeoutMs);
    }
    // A force unload may have stopped the worker while we waited.
    if ((this.#phase as WorkerPhase) === "closed") return "forced";
    onReleasing?.();
    this.#send({ type: "exit" });
    if ((await Promise.race([this.#exited.then(() => "exited" as const), timeout()])) !== "exited") return this.#forceAfter(timeoutMs);
    return "released";
  }

  #forceAfter(timeoutMs: number): "forced" {
    this.stop(new RuntimeError("UNLOADING", `model ${this.modelId} was force-unloaded after ${timeoutMs} ms`));
    return "forced";
  }

  /**
   * Answers every pending caller with `reason` now and tells the worker to
   * skip queued runs, release and exit. The thread ends once ONNX Runtime
   * returns from the native call it may be in; `exited()` tells when.
   */
  stop(reason: Error): void {
    requestStop(this.#bell);
    if (!this.#threadGone) this.#send({ type: "exit" });
    this.#close(reason, false);
  }

  /** Resolves when the thread has ended and its memory is back. */
  exited(): Promise<void> {
    return this.#exited;
  }

  /**
   * Sends a run that found nothing else in flight. When the last few came that
   * way, with no other model's runs in flight either (a client calling one request
   * at a time), and one of the last few answers came back within the wait's bound
   * (a tiny model; one late answer must not turn it off), this thread waits for
   * the answer awake instead of going back to its event loop to sleep: the
   * wake-up that saves (~40 µs here: the worker's post to a sleeping thread, and
   * the hop back) is most of a tiny model's round trip. The wait ends as soon as
   * the answer is posted; anything else that arrived meanwhile waits at most the
   * bound.
   */
  #sendLone(): void {
    this.#flushRuns();
    // With no wait allowed, the trips it learns from are not timed either.
    if (this.#answerWaitMs === 0) return;
    const sentAt = (this.#loneSentAt = performance.now());
    if (this.opts.othersBusy(this)) this.#loneStreak = 0;
    else if (++this.#loneStreak > SEQUENTIAL_RUNS && this.#loneTripsMs.least() <= this.#answerWaitMs) {
      spinForAnswer(this.#bell, sentAt + this.#answerWaitMs);
    }
  }

  #flushRuns(): void {
    const items = this.#outbox;
    this.#outbox = [];
    if (this.#phase === "closed" || items.length === 0) return;
    this.#send({ type: "runs", items }, items.flatMap((i) => transferList(i.inputs)));
    // A worker holding a batch for its queue delay sleeps until runs are posted; one that
    // has just answered a lone request may be spinning for the next.
    if (this.#batching?.maxQueueDelayUs || this.opts.spinUs > 0) ring(this.#bell);
  }

  #send(msg: ToWorker, transfer: ArrayBuffer[] = []): void {
    if (msg.type === "exit") this.#exitRequested = true;
    this.#worker.postMessage(msg, transfer);
  }

  #handle(msg: FromWorker): void {
    switch (msg.type) {
      case "ready":
        break; // a spare's signal; this thread is already in use
      case "warming":
        if (this.#phase === "loading") this.#onWarming?.();
        break;
      case "loaded":
        if (this.#phase !== "loading") return; // stopped meanwhile; the worker is on its way out
        this.#phase = "ready";
        this.lastUsedAt = monotonicMs();
        this.info = { inputs: msg.inputs, outputs: msg.outputs, providers: msg.providers, batching: msg.batching ? this.#batching : undefined };
        this.#onLoad?.resolve(this.info);
        this.#onLoad = undefined;
        break;
      case "load-error":
        this.stop(new RuntimeError(msg.code, msg.message));
        break;
      case "results":
        this.lastUsedAt = monotonicMs();
        if (this.#loneSentAt > 0) this.#loneTripsMs.note(performance.now() - this.#loneSentAt);
        this.#loneSentAt = 0;
        for (const r of msg.items) {
          const p = this.#runs.get(r.id);
          this.#runs.delete(r.id);
          if ("outputs" in r) p?.resolve(r);
          else p?.reject(new RuntimeError("RUN_FAILED", r.error));
        }
        if (this.#runs.size === 0) for (const w of this.#idleWaiters.splice(0)) w();
        break;
    }
  }

  #close(reason: Error, unexpected: boolean): void {
    if (this.#phase === "closed") return;
    const wasServing = this.#phase === "ready" || this.#phase === "draining";
    this.#phase = "closed";
    this.#onLoad?.reject(reason);
    this.#onLoad = undefined;
    for (const p of this.#runs.values()) p.reject(reason);
    this.#runs.clear();
    for (const w of this.#idleWaiters.splice(0)) w();
    this.opts.onClosed(this, unexpected && wasServing);
  }
}
