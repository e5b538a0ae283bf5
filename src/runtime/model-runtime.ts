// The set of live model workers. At most one worker per model exists at any
// time; the job loop is the only caller of load/unload.
import { JobError } from "../jobs/states";
import { ModelWorker, RuntimeError, type LoadedInfo } from "./model-worker";
import type { LoadRequest, WireTensor } from "./protocol";

export interface RuntimeOptions {
  maxQueuePerModel: number;
  /** Called when a serving worker dies without being asked to (a crash). */
  onCrash: (modelId: string) => void;
}

export class ModelRuntime {
  #workers = new Map<string, ModelWorker>();

  constructor(private readonly opts: RuntimeOptions) {}

  get(modelId: string): ModelWorker | undefined {
    return this.#workers.get(modelId);
  }

  /** Number of live workers; each holds at most one session. */
  get size(): number {
    return this.#workers.size;
  }

  async load(modelId: string, req: LoadRequest, timeoutMs: number): Promise<LoadedInfo> {
    if (this.#workers.has(modelId)) throw new Error(`model ${modelId} already has a worker`);
    const worker = new ModelWorker(modelId, {
      maxQueue: this.opts.maxQueuePerModel,
      onExit: (w, unexpected) => {
        if (this.#workers.get(modelId) === w) this.#workers.delete(modelId);
        if (unexpected) this.opts.onCrash(modelId);
      },
    });
    this.#workers.set(modelId, worker);
    return worker.load(req, timeoutMs);
  }

  /** Graceful unless force; resolves once the worker is gone. */
  async unload(modelId: string, opts: { force: boolean; timeoutMs: number }): Promise<"released" | "forced" | "absent"> {
    const w = this.#workers.get(modelId);
    if (!w) return "absent";
    if (opts.force) {
      this.terminate(modelId, new RuntimeError("UNLOADING", `model ${modelId} was force-unloaded`));
      return "forced";
    }
    return w.release(opts.timeoutMs);
  }

  /** Ends a model's worker at once (force unload, cancelling a load). */
  terminate(modelId: string, reason: Error = new JobError("CANCELLED", "cancelled")): boolean {
    const w = this.#workers.get(modelId);
    if (!w) return false;
    w.terminate(reason);
    return true;
  }

  run(modelId: string, inputs: WireTensor[], outputs?: string[]): Promise<WireTensor[]> {
    const w = this.#workers.get(modelId);
    if (!w) return Promise.reject(new RuntimeError("NOT_READY", `model ${modelId} is not loaded`));
    return w.run(inputs, outputs);
  }

  /** Releases every session gracefully within the bound, then terminates stragglers. */
  async shutdown(timeoutMs: number): Promise<void> {
    await Promise.all([...this.#workers.keys()].map((id) => this.unload(id, { force: false, timeoutMs })));
  }
}
