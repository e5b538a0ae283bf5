// Messages between the HTTP thread and a model's session worker. Tensor bytes
// travel as transferred ArrayBuffers, never as copies or JSON.
import type { BatchingSpec } from "./batching";

export type OrtType =
  | "float32" | "float64" | "float16" | "int8" | "int16" | "int32" | "int64"
  | "uint8" | "uint16" | "uint32" | "uint64" | "bool" | "string";

/** A model input or output as ONNX Runtime describes it. */
export interface TensorInfo {
  name: string;
  /** ONNX Runtime's element type name, e.g. float32, int64, string. */
  type: string;
  /** -1 for a dynamic dimension. */
  shape: number[];
  /** Symbolic names of dynamic dimensions where the model gives them. */
  dimNames?: (string | null)[];
}

export interface WireTensor {
  name: string;
  type: OrtType;
  dims: number[];
  /** Little-endian element bytes, or the strings of a string tensor. */
  data: ArrayBuffer | string[];
}

export interface WarmupSpec {
  /** Runs on zero-filled inputs before the session may serve. */
  runs: number;
  /** Shapes per input name; dynamic dimensions not given here are 1. */
  shapes?: Record<string, number[]>;
  /** The most elements one warmup tensor may hold (MODELD_MAX_TENSOR_ELEMENTS, as for inference inputs). */
  maxElements?: number;
}

/** ONNX Runtime's own names; absent means its default. */
export interface SessionOptions {
  intraOpNumThreads?: number;
  interOpNumThreads?: number;
  graphOptimizationLevel?: "disabled" | "basic" | "extended" | "all";
  executionMode?: "sequential" | "parallel";
}

export interface LoadRequest {
  path: string;
  executionProviders: string[];
  warmup?: WarmupSpec;
  sessionOptions?: SessionOptions;
  batching?: BatchingSpec;
  /** Fault injection (MODELD_FAULT_WORKER_CRASH_AFTER_RUNS): the worker throws, uncaught, on receiving run number N+1. */
  crashAfterRuns?: number;
}

export type ToWorker =
  /**
   * `doorbell`: the stop flag and the counts of runs and results messages posted (see doorbell.ts).
   * `spinUs`: how long the worker stays awake after answering a lone run (session-worker.ts, linger).
   */
  | ({ type: "load"; doorbell: SharedArrayBuffer; spinUs: number } & LoadRequest)
  /** The runs requested in one turn of the HTTP thread, few messages for many runs: postMessage is the costly part. */
  | { type: "runs"; items: RunItem[] }
  | { type: "exit" };

export type LoadErrorCode = "LOAD_FAILED" | "UNSAFE_EXTERNAL_DATA" | "WARMUP_FAILED";

export type FromWorker =
  /** onnxruntime-node is imported: the thread is ready for a load. */
  | { type: "ready" }
  /** The session exists and warmup runs are starting. */
  | { type: "warming" }
  /** `batching`: whether requests are merged (asked for, and every input and output has a dynamic first dimension). */
  | { type: "loaded"; inputs: TensorInfo[]; outputs: TensorInfo[]; providers: string[]; batching: boolean }
  | { type: "load-error"; code: LoadErrorCode; message: string }
  | { type: "results"; items: RunResult[] };

export interface RunItem {
  id: number;
  inputs: WireTensor[];
  outputs?: string[];
}

/**
 * Where the session.run that answered a request spent its time, in ns, measured
 * in the worker. Every request of a batch reports the whole execution, as
 * Triton's statistics do; `first` marks one request per execution, so
 * executions are counted once.
 */
export interface ExecutionTiming {
  inputNs: number;
  inferNs: number;
  outputNs: number;
  /** Rows in the execution: the merged dimension 0 when batching, else 1. */
  batchSize: number;
  first: boolean;
}

export type RunResult = { id: number; outputs: WireTensor[]; timing: ExecutionTiming } | { id: number; error: string };

/**
 * Most runs (HTTP thread → worker, when the session does not batch) or results
 * (worker → HTTP thread) in one message, so the two threads work in a pipeline
 * rather than in turns: at c=64, 6.2k → 7.7k req/s at the same CPU per request.
 * 4 costs more CPU per request than it gains; 16 measured like 8.
 */
export const MAX_ITEMS_PER_MESSAGE = 8;

/** The buffers a message can hand over instead of copying. */
export function transferList(tensors: WireTensor[]): ArrayBuffer[] {
  return tensors.flatMap((t) => (t.data instanceof ArrayBuffer ? [t.data] : []));
}

/** Byte arrays joined into one fresh buffer of their own. */
export function concatBytes(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

/**
 * A view's exact bytes in a buffer of their own, to hand over: the view's buffer when
 * the view spans all of it, else a copy of just those bytes.
 */
export function ownedBuffer(view: ArrayBufferView): ArrayBuffer {
  const whole = view.byteOffset === 0 && view.byteLength === view.buffer.byteLength;
  return (whole ? view.buffer : view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength)) as ArrayBuffer;
}
