// Inference statistics per model version, in Triton's terms, kept in memory
// since the process started, as Triton keeps them. The inference service records
// each request before its response is sent; the /v2 statistics extension and
// /metrics read the same numbers, so they always agree.

/** A count and the nanoseconds those events took in total. */
export interface Duration {
  count: number;
  ns: number;
}

export interface BatchStats {
  batchSize: number;
  computeInput: Duration;
  computeInfer: Duration;
  computeOutput: Duration;
}

export interface VersionStats {
  /** ms since epoch; 0 before the first request. */
  lastInference: number;
  /** Inferences: a request's rows when the model batches, else one per request. */
  inferenceCount: number;
  executionCount: number;
  success: Duration;
  fail: Duration;
  queue: Duration;
  computeInput: Duration;
  computeInfer: Duration;
  computeOutput: Duration;
  batches: Map<number, BatchStats>;
}

/** One successful request's times, in integer ns. */
export interface RequestTiming {
  totalNs: number;
  queueNs: number;
  inputNs: number;
  inferNs: number;
  outputNs: number;
  rows: number;
  /** The execution that answered it, given by exactly one of the requests it answered. */
  execution?: { batchSize: number; inputNs: number; inferNs: number; outputNs: number };
}

const zero = (): Duration => ({ count: 0, ns: 0 });
const add = (d: Duration, ns: number) => {
  d.count++;
  d.ns += ns;
};

export function emptyStats(): VersionStats {
  return {
    lastInference: 0,
    inferenceCount: 0,
    executionCount: 0,
    success: zero(),
    fail: zero(),
    queue: zero(),
    computeInput: zero(),
    computeInfer: zero(),
    computeOutput: zero(),
    batches: new Map(),
  };
}

export function createInferenceStats() {
  const byVersion = new Map<string, VersionStats>();
  const key = (modelId: string, version: string) => `${modelId}\u0000${version}`;
  const entry = (modelId: string, version: string) => {
    const k = key(modelId, version);
    let s = byVersion.get(k);
    if (!s) byVersion.set(k, (s = emptyStats()));
    return s;
  };
  return {
    success(modelId: string, version: string, t: RequestTiming): void {
      const s = entry(modelId, version);
      s.lastInference = Date.now();
      s.inferenceCount += t.rows;
      add(s.success, t.totalNs);
      add(s.queue, t.queueNs);
      add(s.computeInput, t.inputNs);
      add(s.computeInfer, t.inferNs);
      add(s.computeOutput, t.outputNs);
      const e = t.execution;
      if (!e) return;
      s.executionCount++;
      let b = s.batches.get(e.batchSize);
      if (!b) s.batches.set(e.batchSize, (b = { batchSize: e.batchSize, computeInput: zero(), computeInfer: zero(), computeOutput: zero() }));
      add(b.computeInput, e.inputNs);
      add(b.computeInfer, e.inferNs);
      add(b.computeOutput, e.outputNs);
    },
    failure(modelId: string, version: string, totalNs: number): void {
      const s = entry(modelId, version);
      s.lastInference = Date.now();
      add(s.fail, totalNs);
    },
    /** The version's numbers, or zeros when it has served nothing since the start. */
    get(modelId: string, version: string): VersionStats {
      return byVersion.get(key(modelId, version)) ?? emptyStats();
    },
    /** Drops a deleted model's numbers, so a new model under its id starts from zero. */
    forget(modelId: string): void {
      for (const k of byVersion.keys()) if (k.startsWith(`${modelId}\u0000`)) byVersion.delete(k);
    },
  };
}

export type InferenceStats = ReturnType<typeof createInferenceStats>;
