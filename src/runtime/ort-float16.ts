// onnxruntime-node's binding cannot read a Float16Array (it sees 0 bytes:
// "not enough space: expected N, got 0"), but onnxruntime-common converts
// float16 data to Float16Array whenever the runtime has one, as Bun does. The
// type check runs once, at the first Tensor; running it while Float16Array is
// hidden keeps float16 tensors on Uint16Array, which the binding reads.
import type * as Ort from "onnxruntime-node";

export function keepFloat16AsUint16(ort: typeof Ort): void {
  const g = globalThis as { Float16Array?: unknown };
  const saved = g.Float16Array;
  g.Float16Array = undefined;
  try {
    new ort.Tensor("float32", new Float32Array(1), [1]);
  } finally {
    g.Float16Array = saved;
  }
}
