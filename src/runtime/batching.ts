// Dynamic batching inside a session's worker: requests waiting while the
// session is busy are merged along dimension 0 into one run, and the outputs
// split back per request. Row-major tensors make both steps plain byte
// concatenation and slicing, so each request gets exactly the bytes it would
// have got alone.
import { concatBytes, type RunItem, type TensorInfo, type WireTensor } from "./protocol";

export interface BatchingSpec {
  maxBatchSize: number;
  /** How long to wait for more requests when a batch is not full; 0: never wait. */
  maxQueueDelayUs: number;
  /** With a delay: batch sizes worth waiting for. */
  preferredBatchSizes?: number[];
}

/** Batching needs every input and output to have a dynamic first dimension. */
export function canBatch(inputs: TensorInfo[], outputs: TensorInfo[]): boolean {
  return [...inputs, ...outputs].every((t) => t.type !== "non-tensor" && t.shape.length > 0 && t.shape[0] === -1);
}

export const rowsOf = (item: RunItem): number => item.inputs[0]?.dims[0] ?? 0;

/** What must match for two requests to share a run: input names, types and non-batch dims, and the requested outputs. */
function signature(item: RunItem): string {
  const inputs = [...item.inputs].sort((a, b) => (a.name < b.name ? -1 : 1)).map((t) => `${t.name}:${t.type}:${t.dims.slice(1).join("x")}`);
  const rows = new Set(item.inputs.map((t) => t.dims[0]));
  // Inputs that disagree on their first dimension are left to ONNX Runtime, alone.
  if (rows.size !== 1) return `alone:${item.id}`;
  return `${inputs.join(",")}|${[...(item.outputs ?? [])].sort().join(",")}`;
}

/**
 * Takes the next batch off the front of `queue`: the first request and the
 * later ones that match it, in order, while the rows fit in maxBatchSize.
 */
export function takeBatch(queue: RunItem[], maxBatchSize: number): RunItem[] {
  const first = queue.shift();
  if (!first) return [];
  const batch = [first];
  const sig = signature(first);
  let rows = rowsOf(first);
  for (let i = 0; i < queue.length && rows < maxBatchSize; ) {
    const item = queue[i]!;
    if (signature(item) === sig && rows + rowsOf(item) <= maxBatchSize) {
      batch.push(item);
      rows += rowsOf(item);
      queue.splice(i, 1);
    } else i++;
  }
  return batch;
}

/** Rows waiting in the queue that could join a batch with its first request. */
export function queuedRows(queue: RunItem[]): number {
  const first = queue[0];
  if (!first) return 0;
  const sig = signature(first);
  return queue.filter((i) => signature(i) === sig).reduce((n, i) => n + rowsOf(i), 0);
}

function concat(parts: WireTensor[]): WireTensor {
  const first = parts[0]!;
  const dims = [parts.reduce((n, p) => n + p.dims[0]!, 0), ...first.dims.slice(1)];
  if (Array.isArray(first.data)) return { ...first, dims, data: parts.flatMap((p) => p.data as string[]) };
  return { ...first, dims, data: concatBytes(parts.map((p) => new Uint8Array(p.data as ArrayBuffer))).buffer };
}

/** One set of inputs for the whole batch, each the requests' tensors one after another along dimension 0. */
export function mergeInputs(batch: RunItem[]): WireTensor[] {
  return batch[0]!.inputs.map((t) => concat(batch.map((item) => item.inputs.find((i) => i.name === t.name)!)));
}

/**
 * Each request's share of the batch's outputs. Undefined when an output's
 * first dimension is not the batch's row count, so rows cannot be told apart.
 */
export function splitOutputs(batch: RunItem[], outputs: WireTensor[]): WireTensor[][] | undefined {
  const total = batch.reduce((n, i) => n + rowsOf(i), 0);
  if (outputs.some((o) => o.dims[0] !== total)) return undefined;
  let row = 0;
  return batch.map((item) => {
    const rows = rowsOf(item);
    const mine = outputs.map((o) => {
      const dims = [rows, ...o.dims.slice(1)];
      if (Array.isArray(o.data)) {
        const per = o.data.length / total;
        return { ...o, dims, data: o.data.slice(row * per, (row + rows) * per) };
      }
      const per = o.data.byteLength / total;
      return { ...o, dims, data: o.data.slice(row * per, (row + rows) * per) };
    });
    row += rows;
    return mine;
  });
}
