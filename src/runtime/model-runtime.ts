// The set of model workers. At most one serving worker per model; a worker
// that was stopped stays counted until its thread has ended, and a new load
// of the same model waits for it, so a model never holds two sessions.
//
// After the first load one spare thread is kept started: starting a worker
// and importing onnxruntime-node is most of a small model's load time.
import { JobError } from "../jobs/states";
import { ModelWorker, RuntimeError, spawnSessionWorker, type LoadedInfo } from "./model-worker";
import type { LoadRequest, WireTensor } from "./protocol";

export interface RuntimeOptions {
  maxQueuePerModel: number;
  /** Called when a serving worker dies without being asked to (a crash). */
  onCrash: (modelId: string) => void;
}

export class ModelRuntime {
  #serving = new Map<string, ModelWorker>();
  #threads = new Set<ModelWorker>();
  #spare?: Worker;
  #closing = false;

  constructor(private readonly opts: RuntimeOptions) {}

  get(modelId: string): ModelWorker | undefined {
    return this.#serving.get(modelId);
  }

  /** Models with a live worker (loading, serving or draining). */
  get size(): number {
    return this.#serving.size;
  }

  /** Worker threads still alive, including stopped ones whose session is being released. */
  get threads(): number {
    return this.#threads.size;
  }

  /** What each live thread is doing, for diagnostics. */
  describe(): { modelId: string; phase: string; serving: boolean; inflight: number }[] {
    return [...this.#threads].map((w) => ({ modelId: w.modelId, phase: w.phase, serving: this.#serving.get(w.modelId) === w, inflight: w.inflight }));
  }

  threadsOf(modelId: string): number {
    return this.#threadsOf(modelId).length;
  }

  #threadsOf(modelId: string): ModelWorker[] {
    return [...this.#threads].filter((w) => w.modelId === modelId);
  }

  async load(modelId: string, req: LoadRequest, timeoutMs: number): Promise<LoadedInfo> {
    if (this.#serving.has(modelId)) throw new Error(`model ${modelId} already has a worker`);
    const previous = this.#threadsOf(modelId);
    if (previous.length) {
      const gone = Promise.all(previous.map((w) => w.exited()));
      const timedOut = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), timeoutMs));
      if ((await Promise.race([gone, timedOut])) === "timeout") {
        throw new JobError("LOAD_TIMEOUT", `the previous worker of ${modelId} is still inside ONNX Runtime after ${timeoutMs} ms`);
      }
    }
    const worker = new ModelWorker(modelId, {
      maxQueue: this.opts.maxQueuePerModel,
      onClosed: (w, crashed) => {
        if (this.#serving.get(modelId) === w) this.#serving.delete(modelId);
        if (crashed) this.opts.onCrash(modelId);
      },
      onExited: (w) => this.#threads.delete(w),
      thread: this.#takeSpare(),
    });
    this.#serving.set(modelId, worker);
    this.#threads.add(worker);
    return worker.load(req, timeoutMs);
  }

  #takeSpare(): Worker | undefined {
    const spare = this.#spare;
    this.#spare = undefined;
    setTimeout(() => this.#startSpare(), 0);
    return spare;
  }

  #startSpare(): void {
    if (this.#closing || this.#spare) return;
    const w = spawnSessionWorker();
    // A spare that fails to start (or exits) before it is used is simply dropped.
    const drop = () => {
      if (this.#spare === w) this.#spare = undefined;
    };
    w.addEventListener("error", drop);
    w.addEventListener("close", drop);
    this.#spare = w;
  }

  /** Graceful unless force; "forced" answers pending requests with 503 at once. */
  async unload(modelId: string, opts: { force: boolean; timeoutMs: number }): Promise<"released" | "forced" | "absent"> {
    const w = this.#serving.get(modelId);
    if (!w) return "absent";
    if (opts.force) {
      w.stop(new RuntimeError("UNLOADING", `model ${modelId} was force-unloaded`));
      return "forced";
    }
    return w.release(opts.timeoutMs);
  }

  /** Stops a model's worker at once (force unload, cancelling a load). */
  stop(modelId: string, reason: Error = new JobError("CANCELLED", "cancelled")): boolean {
    const w = this.#serving.get(modelId);
    if (!w) return false;
    w.stop(reason);
    return true;
  }

  run(modelId: string, inputs: WireTensor[], outputs?: string[]): Promise<WireTensor[]> {
    const w = this.#serving.get(modelId);
    if (!w) return Promise.reject(new RuntimeError("NOT_READY", `model ${modelId} is not loaded`));
    return w.run(inputs, outputs);
  }

  /** Releases every session within the bound and waits for the threads to end. */
  async shutdown(timeoutMs: number): Promise<void> {
    this.#closing = true;
    const spare = this.#spare;
    this.#spare = undefined;
    // Asked, not terminated: it may still be importing the native addon.
    const spareGone = spare ? new Promise((r) => (spare.addEventListener("close", r), spare.postMessage({ type: "exit" }))) : undefined;
    await Promise.all([...this.#serving.keys()].map((id) => this.unload(id, { force: false, timeoutMs })));
    const remaining: Promise<unknown>[] = [...this.#threads].map((w) => w.exited());
    if (spareGone) remaining.push(spareGone);
    await Promise.race([Promise.all(remaining), new Promise((r) => setTimeout(r, timeoutMs))]);
  }
}
