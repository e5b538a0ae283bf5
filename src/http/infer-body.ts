// Reads an inference request in either encoding (JSON, or the binary tensor
// data extension: a JSON header of Inference-Header-Content-Length bytes
// followed by raw tensor bytes) and writes the response the same way.
import type { Context } from "hono";
import { AppError } from "../errors";
import type { Deps } from "../context";
import { infer, type InferRequest, type InferResult } from "../services/inference.service";
import type { JsonCodec } from "../runtime/json-codec";
import { concatBytes, type WireTensor } from "../runtime/protocol";
import { hasExactJsonText, jsonDataText, numericLayout, toJsonData, type ResponseTensor } from "../runtime/tensors";
import { malformedJson, parseJson, parseWith } from "./body";
import type { AppEnv } from "./env";
import { InferRequestSchema } from "./v2.schemas";

export const HEADER_LENGTH = "Inference-Header-Content-Length";

const parseRequest = (value: unknown) => parseWith(InferRequestSchema, value) as InferRequest;

/**
 * JSON bodies from this size on are parsed in the codec's thread (DEVELOPERS.md,
 * fact 4): JSON.parse costs ~3 µs per kB here, so a 64 kB body holds the HTTP thread
 * ~0.2 ms, about what the round trip to the thread costs; a 17 MB one held it 100+ ms.
 */
export const OFF_THREAD_JSON_BYTES = 64 * 1024;

async function readJsonRequest(c: Context<AppEnv>, codec: JsonCodec): Promise<InferRequest> {
  // A declared small body is read as text, as it always was; a large or undeclared one as bytes.
  if (Number(c.req.header("content-length")) < OFF_THREAD_JSON_BYTES) return parseRequest(parseJson(await c.req.text()));
  const bytes = await c.req.arrayBuffer();
  if (bytes.byteLength < OFF_THREAD_JSON_BYTES) return parseRequest(parseJson(new TextDecoder().decode(bytes)));
  const decoded = await codec.decode(bytes);
  if ("invalid" in decoded) throw decoded.invalid === "malformed" ? malformedJson() : new AppError("VALIDATION_ERROR", "request body is nested too deeply");
  const req = parseRequest(decoded.value);
  decoded.packed.forEach((packed, i) => {
    if (packed) req.inputs[i]!.binary = new Uint8Array(packed);
  });
  return req;
}

async function readInferRequest(c: Context<AppEnv>, codec: JsonCodec): Promise<InferRequest> {
  const headerLength = c.req.header(HEADER_LENGTH);
  if (headerLength === undefined) return readJsonRequest(c, codec);

  const body = new Uint8Array(await c.req.arrayBuffer());
  const n = Number(headerLength);
  if (!Number.isSafeInteger(n) || n <= 0 || n > body.byteLength) {
    throw new AppError("VALIDATION_ERROR", `${HEADER_LENGTH} must be between 1 and the body length (${body.byteLength})`);
  }
  const req = parseRequest(parseJson(new TextDecoder().decode(body.subarray(0, n))));
  let offset = n;
  for (const input of req.inputs) {
    const size = (input as { parameters?: Record<string, unknown> }).parameters?.binary_data_size;
    if (size === undefined) continue;
    if (!Number.isSafeInteger(size) || (size as number) < 0 || offset + (size as number) > body.byteLength) {
      throw new AppError("INVALID_TENSOR", `input ${input.name}: binary_data_size ${String(size)} does not fit in the ${body.byteLength - offset} bytes left`);
    }
    if (input.data !== undefined) throw new AppError("INVALID_TENSOR", `input ${input.name}: give either data or binary_data_size, not both`);
    input.binary = body.subarray(offset, offset + (size as number));
    offset += size as number;
  }
  if (offset !== body.byteLength) throw new AppError("INVALID_TENSOR", `${body.byteLength - offset} bytes of binary data belong to no input`);
  return req;
}

/**
 * JSON outputs of at least this many elements are written in the codec's thread:
 * JSON.stringify of a 4 MB float32 tensor held the HTTP thread 100+ ms.
 */
export const OFF_THREAD_JSON_ELEMENTS = 16 * 1024;

const offThread = (t: WireTensor) => t.data instanceof ArrayBuffer && t.data.byteLength / numericLayout(t.type)!.size >= OFF_THREAD_JSON_ELEMENTS;
const jsonOutput = ({ values, ...o }: ResponseTensor) => (values ? { ...o, data: toJsonData(values) } : o);

/**
 * The response's JSON as UTF-8, written as text: large outputs' values in the codec's
 * thread, 64-bit integers from their exact digits (jsonDataText), the rest here.
 */
async function composeJson(result: InferResult, large: (WireTensor | undefined)[], codec: JsonCodec): Promise<Uint8Array<ArrayBuffer>> {
  const { outputs, ...head } = result.json;
  const pieces: (string | WireTensor)[] = [];
  let text = `${JSON.stringify(head).slice(0, -1)},"outputs":[`;
  outputs.forEach(({ values, ...meta }, i) => {
    if (i > 0) text += ",";
    if (!values) return void (text += JSON.stringify(meta));
    text += `${JSON.stringify(meta).slice(0, -1)},"data":`;
    const tensor = large[i];
    if (tensor) {
      pieces.push(text, tensor);
      text = "}";
    } else text += `${jsonDataText(values)}}`;
  });
  pieces.push(`${text}]}`);
  // With no large tensor, nothing is worth the trip to the codec's thread.
  return pieces.length === 1 ? new TextEncoder().encode(pieces[0] as string) : codec.encode(pieces);
}

async function writeInferResponse(c: Context<AppEnv>, result: InferResult, codec: JsonCodec): Promise<Response> {
  const large = result.json.outputs.map((o) => (o.values && offThread(o.values) ? o.values : undefined));
  const asText = large.some((t) => t) || result.json.outputs.some((o) => o.values && hasExactJsonText(o.values));
  const composed = asText ? await composeJson(result, large, codec) : undefined;
  // Small outputs only: the whole response is written here.
  const plain = () => ({ ...result.json, outputs: result.json.outputs.map(jsonOutput) });
  if (result.binary.length === 0) return composed === undefined ? c.json(plain(), 200) : c.body(composed, 200, { "Content-Type": "application/json" });
  const header = composed ?? new TextEncoder().encode(JSON.stringify(plain()));
  return c.body(concatBytes([header, ...result.binary]), 200, { "Content-Type": "application/octet-stream", [HEADER_LENGTH]: String(header.byteLength) });
}

/** An inference as /v2 and /api/v1 both serve it: the request read, the model run, the answer written. */
export async function serveInference(c: Context<AppEnv>, d: Deps, modelId: string, version: string | undefined): Promise<Response> {
  const req = await readInferRequest(c, d.jsonCodec);
  // What follows is the model's work, which may outlast the listener's idle timeout.
  c.env?.awaitingWork?.();
  return writeInferResponse(c, await infer(modelId, version, req, d, c.get("principal").sub), d.jsonCodec);
}
