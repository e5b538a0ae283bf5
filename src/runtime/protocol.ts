// Messages between the HTTP thread and a model's session worker. Tensor bytes
// travel as transferred ArrayBuffers, never as copies or JSON.
import type { TensorInfo } from "../db/models.repo";

export type OrtType =
  | "float32" | "float64" | "float16" | "int8" | "int16" | "int32" | "int64"
  | "uint8" | "uint16" | "uint32" | "uint64" | "bool" | "string";

export interface WireTensor {
  name: string;
  type: OrtType;
  dims: number[];
  /** Little-endian element bytes, or the strings of a string tensor. */
  data: ArrayBuffer | string[];
}

export interface LoadRequest {
  path: string;
  executionProviders: string[];
}

export type ToWorker =
  /** `stop` is a one-int SharedArrayBuffer: non-zero means "run nothing more, release and exit". */
  | ({ type: "load"; stop: SharedArrayBuffer } & LoadRequest)
  /** Every run requested in one turn of the HTTP thread, in one message: postMessage is the costly part. */
  | { type: "runs"; items: RunItem[] }
  | { type: "exit" };

export type FromWorker =
  | { type: "loaded"; inputs: TensorInfo[]; outputs: TensorInfo[]; providers: string[] }
  | { type: "load-error"; code: "LOAD_FAILED" | "UNSAFE_EXTERNAL_DATA"; message: string }
  | { type: "results"; items: RunResult[] };

export interface RunItem {
  id: number;
  inputs: WireTensor[];
  outputs?: string[];
}

export type RunResult = { id: number; outputs: WireTensor[] } | { id: number; error: string };

/** The buffers a message can hand over instead of copying. */
export function transferList(tensors: WireTensor[]): ArrayBuffer[] {
  return tensors.flatMap((t) => (t.data instanceof ArrayBuffer ? [t.data] : []));
}
