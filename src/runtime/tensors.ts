// Open Inference Protocol tensors <-> ONNX Runtime wire tensors. Everything a
// client can get wrong is checked here, before anything reaches ONNX Runtime.
import { ownedBuffer, type OrtType, type TensorInfo, type WireTensor } from "./protocol";

export const DATATYPES = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES"] as const;
export type Datatype = (typeof DATATYPES)[number];

type NumericView =
  | Uint8Array | Uint16Array | Uint32Array | BigUint64Array | Int8Array | Int16Array | Int32Array | BigInt64Array | Float32Array | Float64Array;

interface TypeSpec {
  ort: OrtType;
  /** Bytes per element; 0 for BYTES. */
  size: number;
  View?: { new (n: number): NumericView; new (b: ArrayBuffer): NumericView };
  /** Inclusive integer range, for range checks on JSON input. */
  range?: [number, number];
}

const SPECS: Record<Datatype, TypeSpec> = {
  BOOL: { ort: "bool", size: 1, View: Uint8Array },
  UINT8: { ort: "uint8", size: 1, View: Uint8Array, range: [0, 255] },
  UINT16: { ort: "uint16", size: 2, View: Uint16Array, range: [0, 65535] },
  UINT32: { ort: "uint32", size: 4, View: Uint32Array, range: [0, 4294967295] },
  UINT64: { ort: "uint64", size: 8, View: BigUint64Array, range: [0, Number.MAX_SAFE_INTEGER] },
  INT8: { ort: "int8", size: 1, View: Int8Array, range: [-128, 127] },
  INT16: { ort: "int16", size: 2, View: Int16Array, range: [-32768, 32767] },
  INT32: { ort: "int32", size: 4, View: Int32Array, range: [-2147483648, 2147483647] },
  INT64: { ort: "int64", size: 8, View: BigInt64Array, range: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER] },
  FP16: { ort: "float16", size: 2, View: Uint16Array },
  FP32: { ort: "float32", size: 4, View: Float32Array },
  FP64: { ort: "float64", size: 8, View: Float64Array },
  BYTES: { ort: "string", size: 0 },
};

const ORT_TO_DATATYPE = Object.fromEntries(Object.entries(SPECS).map(([dt, s]) => [s.ort, dt])) as Record<string, Datatype>;

export function datatypeOf(ortType: string): Datatype | undefined {
  return ORT_TO_DATATYPE[ortType];
}

type NumericLayout = Required<Pick<TypeSpec, "View" | "size">>;
const LAYOUTS = new Map(Object.values(SPECS).flatMap((s): [string, NumericLayout][] => (s.View ? [[s.ort, { View: s.View, size: s.size }]] : [])));

/** The typed array over an ONNX Runtime numeric type's bytes, and its bytes per element; undefined for strings and types modeld cannot feed. */
export function numericLayout(ortType: string): NumericLayout | undefined {
  return LAYOUTS.get(ortType);
}

/** A client mistake in a tensor: answered 400, never passed to ONNX Runtime. */
export class TensorError extends Error {}

// ---- FP16 --------------------------------------------------------------------
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** Round-to-nearest-even float32 -> float16 bits. */
export function floatToHalf(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

// ---- shapes ------------------------------------------------------------------

/** Element count of a shape, refusing overflow or anything above `max` before allocating. */
export function elementCount(shape: number[], max: number, what = "shape"): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new TensorError(`${what} ${JSON.stringify(shape)} has an invalid dimension ${d}`);
    n *= d;
    if (n > max) throw new TensorError(`${what} ${JSON.stringify(shape)} has more than the allowed ${max} elements (MODELD_MAX_TENSOR_ELEMENTS)`);
  }
  return n;
}

function checkShape(name: string, shape: number[], model: TensorInfo): void {
  if (shape.length !== model.shape.length) {
    throw new TensorError(`input ${name}: shape ${JSON.stringify(shape)} has rank ${shape.length}, the model expects rank ${model.shape.length} ${JSON.stringify(model.shape)}`);
  }
  model.shape.forEach((d, i) => {
    if (d >= 0 && shape[i] !== d) {
      throw new TensorError(`input ${name}: dimension ${i} is ${shape[i]}, the model expects ${d} ${JSON.stringify(model.shape)}`);
    }
  });
}

/** Flattens nested JSON arrays (row-major) without recursion. */
function flatten(data: unknown[], expected: number, name: string): unknown[] {
  if (!data.some(Array.isArray)) return data;
  const out: unknown[] = [];
  const stack: unknown[][] = [data];
  const idx: number[] = [0];
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const i = idx[idx.length - 1]!;
    if (i >= top.length) {
      stack.pop();
      idx.pop();
      continue;
    }
    idx[idx.length - 1] = i + 1;
    const v = top[i];
    if (Array.isArray(v)) {
      if (stack.length > 64) throw new TensorError(`input ${name}: data is nested too deeply`);
      stack.push(v);
      idx.push(0);
    } else {
      out.push(v);
      if (out.length > expected) break;
    }
  }
  return out;
}

/**
 * JSON.parse has already rounded an INT64 or UINT64 past 2^53 by the time it is
 * checked, so the message says where exact values go instead of calling a valid
 * INT64 invalid.
 */
function outOfRange(name: string, v: number, dt: Datatype, [min, max]: [number, number]): string {
  const wide = dt === "INT64" || dt === "UINT64";
  if (!wide || !Number.isInteger(v) || (dt === "UINT64" && v < 0)) return `input ${name}: ${v} is not a valid ${dt}`;
  return `input ${name}: ${v} is outside ${min}..${max}, the ${dt} values a JS number holds exactly; send larger ones as raw bytes (binary_data_size over HTTP), or over gRPC`;
}

/** gRPC's int64 and uint64 contents arrive as BigInts (src/grpc/definition.ts), exact past 2^53. */
function exactWide(name: string, dt: Datatype, view: NumericView, v: bigint): bigint {
  const fits = view instanceof BigInt64Array ? BigInt.asIntN(64, v) === v : view instanceof BigUint64Array && BigInt.asUintN(64, v) === v;
  if (!fits) throw new TensorError(`input ${name}: ${v} is not a valid ${dt}`);
  return v;
}

function fromJsonValues(name: string, dt: Datatype, values: unknown[]): WireTensor["data"] {
  const spec = SPECS[dt];
  if (dt === "BYTES") {
    return values.map((v) => {
      if (typeof v !== "string") throw new TensorError(`input ${name}: BYTES data must be strings`);
      return v;
    });
  }
  // The buffer first, then its view: asking a view made by length for its .buffer makes
  // JavaScriptCore move the elements out of the view (2% of the HTTP thread at c=64).
  const buffer = new ArrayBuffer(values.length * spec.size);
  const view = new spec.View!(buffer);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (dt === "BOOL") {
      if (typeof v !== "boolean") throw new TensorError(`input ${name}: BOOL data must be true or false`);
      view[i] = v ? 1 : 0;
      continue;
    }
    if (typeof v === "bigint") {
      view[i] = exactWide(name, dt, view, v) as never;
      continue;
    }
    if (typeof v !== "number" || !Number.isFinite(v)) throw new TensorError(`input ${name}: ${dt} data must be numbers`);
    if (spec.range) {
      if (!Number.isInteger(v) || v < spec.range[0] || v > spec.range[1]) {
        throw new TensorError(outOfRange(name, v, dt, spec.range));
      }
      view[i] = (view instanceof BigInt64Array || view instanceof BigUint64Array ? BigInt(v) : v) as never;
    } else {
      view[i] = (dt === "FP16" ? floatToHalf(v) : v) as never;
    }
  }
  return buffer;
}

/**
 * A JSON input's data as bytes of its declared datatype, when the data is complete
 * for its shape and every element is valid; otherwise undefined, and the request's
 * own checks report what is wrong, as they would have without this step.
 */
export function packJsonData(t: Record<string, unknown>): ArrayBuffer | undefined {
  const { name, datatype, shape, data } = t;
  if (typeof name !== "string" || typeof datatype !== "string" || !(datatype in SPECS) || datatype === "BYTES") return undefined;
  if (!Array.isArray(shape) || !Array.isArray(data)) return undefined;
  try {
    const count = elementCount(shape, Number.MAX_SAFE_INTEGER);
    const values = flatten(data, count, name);
    return values.length === count ? (fromJsonValues(name, datatype as Datatype, values) as ArrayBuffer) : undefined;
  } catch {
    return undefined;
  }
}

/** Parses BYTES elements in the binary extension's layout: a uint32 LE length, then the bytes. */
function bytesFromBinary(name: string, buf: Uint8Array, count: number): string[] {
  const out: string[] = [];
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dec = new TextDecoder();
  let off = 0;
  for (let i = 0; i < count; i++) {
    if (off + 4 > buf.byteLength) throw new TensorError(`input ${name}: binary BYTES data ends early`);
    const len = dv.getUint32(off, true);
    off += 4;
    if (off + len > buf.byteLength) throw new TensorError(`input ${name}: binary BYTES element overruns the data`);
    out.push(dec.decode(buf.subarray(off, off + len)));
    off += len;
  }
  if (off !== buf.byteLength) throw new TensorError(`input ${name}: binary BYTES data has trailing bytes`);
  return out;
}

export interface RequestTensor {
  name: string;
  shape: number[];
  datatype: string;
  data?: unknown[];
  parameters?: Record<string, unknown>;
  /** Set by the binary extension (or read from shared memory): this input's raw bytes. */
  binary?: Uint8Array;
}

/** Checks the request's inputs against the model and builds wire tensors. */
export function decodeInputs(inputs: RequestTensor[], model: TensorInfo[], maxElements: number): WireTensor[] {
  // Models have a handful of inputs: scanning the arrays costs less than building a Map and a Set per request.
  const out = inputs.map((t, k) => {
    const m = model.find((x) => x.name === t.name);
    if (!m) throw new TensorError(`unknown input ${t.name}; the model's inputs are ${model.map((x) => x.name).join(", ")}`);
    if (inputs.findIndex((x) => x.name === t.name) !== k) throw new TensorError(`input ${t.name} is given twice`);
    const expectedDt = datatypeOf(m.type);
    if (!expectedDt) throw new TensorError(`input ${t.name} has type ${m.type}, which modeld cannot feed`);
    if (t.datatype !== expectedDt) throw new TensorError(`input ${t.name}: datatype ${t.datatype} does not match the model's ${expectedDt}`);
    checkShape(t.name, t.shape, m);
    const count = elementCount(t.shape, maxElements);
    const spec = SPECS[expectedDt];
    let data: WireTensor["data"];
    if (t.binary) {
      if (expectedDt === "BYTES") data = bytesFromBinary(t.name, t.binary, count);
      else {
        if (t.binary.byteLength !== count * spec.size) {
          throw new TensorError(`input ${t.name}: ${t.binary.byteLength} bytes of binary data, shape ${JSON.stringify(t.shape)} needs ${count * spec.size}`);
        }
        // JSON data packed off the HTTP thread spans its whole buffer, and is handed over as it is.
        data = ownedBuffer(t.binary);
      }
    } else {
      if (!Array.isArray(t.data)) throw new TensorError(`input ${t.name}: data is missing`);
      const values = flatten(t.data, count, t.name);
      if (values.length !== count) {
        throw new TensorError(`input ${t.name}: shape ${JSON.stringify(t.shape)} needs ${count} elements, data has ${values.length > count ? "more" : values.length}`);
      }
      data = fromJsonValues(t.name, expectedDt, values);
    }
    return { name: t.name, type: spec.ort, dims: t.shape, data };
  });
  const missing = model.filter((m) => !inputs.some((t) => t.name === m.name)).map((m) => m.name);
  if (missing.length) throw new TensorError(`missing input ${missing.join(", ")}`);
  return out;
}

export interface ResponseTensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  /** An output the response lists as JSON `data`: its tensor, written where the writer sees fit. */
  values?: WireTensor;
  /** Where the output's bytes are: after the JSON (binary extension), or in a client's shared memory region. */
  parameters?: { binary_data_size: number } | { shared_memory_region: string; shared_memory_offset: number; shared_memory_byte_size: number };
}

/** True for the datatypes whose JSON values must be written as text (jsonDataText): a JS number would round them. */
export const hasExactJsonText = (t: WireTensor): boolean => t.type === "int64" || t.type === "uint64";

/** JSON values of a wire tensor, row-major and flat; not for 64-bit integers (hasExactJsonText). */
export function toJsonData(t: WireTensor): (number | boolean | string)[] {
  if (Array.isArray(t.data)) return t.data;
  const dt = datatypeOf(t.type)!;
  const view = new SPECS[dt].View!(t.data);
  // Plain loops: Array.from goes through the iterator protocol, which costs more than a small tensor's whole response.
  const out = new Array<number | boolean>(view.length);
  if (dt === "BOOL") for (let i = 0; i < view.length; i++) out[i] = view[i] !== 0;
  else if (dt === "FP16") for (let i = 0; i < view.length; i++) out[i] = halfToFloat(view[i] as number);
  else for (let i = 0; i < view.length; i++) out[i] = view[i] as number;
  return out;
}

/**
 * The JSON text of a wire tensor's values. INT64 and UINT64 are written from their
 * exact digits, as Triton writes them: through a JS number, 2^60 + 1, 2^60 + 2 and
 * 2^60 + 3 all came out as 1152921504606847000.
 */
export function jsonDataText(t: WireTensor): string {
  if (hasExactJsonText(t)) return `[${new (numericLayout(t.type)!.View)(t.data as ArrayBuffer).join(",")}]`;
  return JSON.stringify(toJsonData(t));
}

/** Raw bytes of a wire tensor in the binary extension's layout. */
export function toBinaryData(t: WireTensor): Uint8Array {
  if (!Array.isArray(t.data)) return new Uint8Array(t.data);
  const enc = new TextEncoder();
  const parts = t.data.map((s) => enc.encode(s));
  const out = new Uint8Array(parts.reduce((n, p) => n + 4 + p.byteLength, 0));
  const dv = new DataView(out.buffer);
  let off = 0;
  for (const p of parts) {
    dv.setUint32(off, p.byteLength, true);
    out.set(p, off + 4);
    off += 4 + p.byteLength;
  }
  return out;
}

/**
 * The outputs a request can be answered with. ONNX Runtime's Node binding returns
 * tensors only: a run that includes a sequence or a map (sklearn-onnx's ZipMap
 * probabilities, say) fails whole with "Non tensor type is temporarily not supported".
 */
export const returnableOutputs = (outputs: TensorInfo[]): TensorInfo[] => outputs.filter((o) => o.type !== "non-tensor");

export function protocolTensorInfo(t: TensorInfo): { name: string; datatype: string; shape: number[] } {
  return { name: t.name, datatype: datatypeOf(t.type) ?? t.type.toUpperCase(), shape: t.shape };
}
