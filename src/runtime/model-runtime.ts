// The set of model sessions, each in its own worker thread.
//
// Per model, one session is *routed*: unversioned requests go to it. A swap
// creates a second session beside it, routes the new one in one synchronous
// step, then drains and releases the old one. A stopped session stays counted
// until its thread has ended, and a new session of the same model waits for
// it, so an abandoned load never doubles a model's memory.
//
// One spare thread is kept started (from shortly after the server listens, and
// again after every load): starting a worker and importing onnxruntime-node is
// most of a small model's load time.
import type { Thread } from "../platform/threads";
import { ModelWorker, RuntimeError, spawnSessionWorker, type LoadedInfo, type SessionIdentity } from "./model-worker";
import type { LoadRequest } from "./protocol";

export interface CrashReport extends SessionIdentity {
  /** True when the crashed session was the routed one, so the model lost its serving session. */
  routed: boolean;
}

export interface RuntimeOptions {
  maxQueuePerModel: number;
  /** See ModelWorker's `spinUs`. */
  spinUs: number;
  /** Called when a session's worker dies without being asked to. */
  onCrash: (report: CrashReport) => void;
}

export class ModelRuntime {
  #routes = new Map<string, ModelWorker>();
  #threads = new Set<ModelWorker>();
  #spare?: { worker: Thread; ready: Promise<void> };
  #closing = false;

  constructor(private readonly opts: RuntimeOptions) {}

  /** The routed session of a model: the one unversioned requests reach. */
  get(modelId: string): ModelWorker | undefined {
    return this.#routes.get(modelId);
  }

  /** Models with a routed session. */
  get size(): number {
    return this.#routes.size;
  }

  /** Worker threads still alive, including stopped ones whose session is being released. */
  get threads(): number {
    return this.#threads.size;
  }

  /** What each live thread is doing, for diagnostics. */
  describe(): { modelId: string; version: string; phase: string; routed: boolean; inflight: number }[] {
    return [...this.#threads].map((w) => ({ modelId: w.modelId, version: w.version, phase: w.phase, routed: this.#routes.get(w.modelId) === w, inflight: w.inflight }));
  }

  threadsOf(modelId: string): number {
    return this.#threadsOf(modelId).length;
  }

  #threadsOf(modelId: string): ModelWorker[] {
    return [...this.#threads].filter((w) => w.modelId === modelId);
  }

  /**
   * Creates a session that is not routed yet. Threads of the model that were
   * stopped but are still inside ONNX Runtime are waited for first; the routed
   * session (a swap's old one) keeps serving meanwhile.
   */
  async create(
    identity: SessionIdentity,
    req: LoadRequest,
    timeoutMs: number,
    opts: { onWarming?: () => void; accountedBytes?: number } = {},
  ): Promise<{ session: ModelWorker; info: LoadedInfo }> {
    const routed = this.#routes.get(identity.modelId);
    const stopped = this.#threadsOf(identity.modelId).filter((w) => w !== routed && w.phase === "closed");
    if (stopped.length) {
      const gone = Promise.all(stopped.map((w) => w.exited()));
      const timedOut = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), timeoutMs));
      if ((await Promise.race([gone, timedOut])) === "timeout") {
        throw new RuntimeError("LOAD_TIMEOUT", `a previous session of ${identity.modelId} is still inside ONNX Runtime after ${timeoutMs} ms`);
      }
    }
    const session = new ModelWorker(identity, {
      maxQueue: this.opts.maxQueuePerModel,
      spinUs: this.opts.spinUs,
      othersBusy: (w) => this.#othersBusy(w),
      onClosed: (w, crashed) => {
        const routed = this.#routes.get(w.modelId) === w;
        if (routed) this.#routes.delete(w.modelId);
        if (crashed) this.opts.onCrash({ modelId: w.modelId, version: w.version, tag: w.tag, routed });
      },
      onExited: (w) => this.#threads.delete(w),
      thread: this.#takeSpare(),
    });
    session.accountedBytes = opts.accountedBytes ?? 0;
    this.#threads.add(session);
    const info = await session.load(req, timeoutMs, opts.onWarming);
    return { session, info };
  }

  /**
   * Makes `session` the one unversioned requests reach, in one synchronous
   * step, and returns the session it replaced. Throws when the session died
   * after it was created.
   */
  route(session: ModelWorker): ModelWorker | undefined {
    if (session.phase !== "ready") throw new RuntimeError("TERMINATED", `the new session of ${session.modelId} ended before it could serve`);
    const previous = this.#routes.get(session.modelId);
    this.#routes.set(session.modelId, session);
    return previous === session ? undefined : previous;
  }

  /**
   * Stops taking requests on `session`, lets in-flight ones finish within the
   * bound, then releases it. A routed session stays routed while it drains, so
   * late requests get a clear "unloading" rather than "not loaded".
   */
  release(session: ModelWorker, timeoutMs: number, onReleasing?: () => void): Promise<"released" | "forced"> {
    return session.release(timeoutMs, onReleasing);
  }

  /** Stops a session at once: its pending callers get `reason` now. */
  stop(session: ModelWorker, reason: Error): void {
    session.stop(reason);
  }

  /** Stops the model's sessions that are being created (not routed, not yet closed). Returns how many. */
  stopCreating(modelId: string, reason: Error): number {
    const routed = this.#routes.get(modelId);
    const creating = this.#threadsOf(modelId).filter((w) => w !== routed && w.phase !== "closed" && w.phase !== "draining");
    for (const w of creating) w.stop(reason);
    return creating.length;
  }

  /** Stops every live session of the model: routed, draining and being created. */
  stopAll(modelId: string, reason: Error): void {
    for (const w of this.#threadsOf(modelId)) if (w.phase !== "closed") w.stop(reason);
  }

  /** Every live session: routed, being created, draining, or stopped but still in ONNX Runtime. */
  sessions(): ModelWorker[] {
    return [...this.#threads];
  }

  #othersBusy(session: ModelWorker): boolean {
    for (const w of this.#threads) if (w !== session && w.inflight > 0) return true;
    return false;
  }

  #takeSpare(): Thread | undefined {
    const spare = this.#spare?.worker;
    this.#spare = undefined;
    return spare;
  }

  /**
   * Starts a spare thread unless one exists, and resolves once it has imported
   * onnxruntime-node. Awaited before a load measures memory, so a thread
   * starting is never counted as the session's cost.
   */
  ensureSpare(): Promise<void> {
    if (this.#closing) return Promise.resolve();
    if (this.#spare) return this.#spare.ready;
    const worker = spawnSessionWorker();
    let settle!: () => void;
    const ready = new Promise<void>((r) => (settle = r));
    // Settling twice is harmless, so these stay attached after the thread is handed to a session.
    worker.onMessage((data) => (data as { type?: string })?.type === "ready" && settle());
    // A spare that fails to start (or exits) before it is used is simply dropped.
    const drop = () => {
      if (this.#spare?.worker === worker) this.#spare = undefined;
      settle();
    };
    worker.onError(drop);
    worker.onExit(drop);
    this.#spare = { worker, ready };
    return ready;
  }

  /** Releases every session within the bound and waits for the threads to end. */
  async shutdown(timeoutMs: number): Promise<void> {
    this.#closing = true;
    const spare = this.#spare?.worker;
    this.#spare = undefined;
    // Asked, not terminated: it may still be importing the native addon.
    const spareGone = spare ? new Promise<void>((r) => (spare.onExit(r), spare.postMessage({ type: "exit" }))) : undefined;
    await Promise.all([...this.#threads].map((w) => w.release(timeoutMs)));
    const remaining: Promise<unknown>[] = [...this.#threads].map((w) => w.exited());
    if (spareGone) remaining.push(spareGone);
    await Promise.race([Promise.all(remaining), new Promise((r) => setTimeout(r, timeoutMs))]);
  }
}
