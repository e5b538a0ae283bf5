// Reads an inference request in either encoding (JSON, or the binary tensor
// data extension: a JSON header of Inference-Header-Content-Length bytes
// followed by raw tensor bytes) and writes the response the same way.
import type { Context } from "hono";
import { AppError } from "../errors";
import type { InferRequest, InferResult } from "../services/inference.service";
import type { JsonDecoder } from "../runtime/json-decoder";
import { malformedJson, parseJson, parseWith } from "./body";
import type { AppEnv } from "./env";
import { InferRequestSchema } from "./v2.schemas";

export const HEADER_LENGTH = "Inference-Header-Content-Length";

const parseRequest = (value: unknown) => parseWith(InferRequestSchema, value) as InferRequest;

/**
 * JSON bodies from this size on are parsed in the decoder's thread (DEVELOPERS.md,
 * fact 4): JSON.parse costs ~3 µs per kB here, so a 64 kB body holds the HTTP thread
 * ~0.2 ms, about what the round trip to the thread costs; a 17 MB one held it 100+ ms.
 */
export const OFF_THREAD_JSON_BYTES = 64 * 1024;

async function readJsonRequest(c: Context<AppEnv>, decoder: JsonDecoder): Promise<InferRequest> {
  // A declared small body is read as text, as it always was; a large or undeclared one as bytes.
  if (Number(c.req.header("content-length")) < OFF_THREAD_JSON_BYTES) return parseRequest(parseJson(await c.req.text()));
  const bytes = await c.req.arrayBuffer();
  if (bytes.byteLength < OFF_THREAD_JSON_BYTES) return parseRequest(parseJson(new TextDecoder().decode(bytes)));
  const decoded = await decoder.decode(bytes);
  if (!decoded) throw malformedJson();
  const req = parseRequest(decoded.value);
  decoded.packed.forEach((bytes, i) => {
    if (bytes) req.inputs[i]!.binary = new Uint8Array(bytes);
  });
  return req;
}

export async function readInferRequest(c: Context<AppEnv>, decoder: JsonDecoder): Promise<InferRequest> {
  const headerLength = c.req.header(HEADER_LENGTH);
  if (headerLength === undefined) return readJsonRequest(c, decoder);

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

export function writeInferResponse(c: Context<AppEnv>, result: InferResult): Response {
  if (result.binary.length === 0) return c.json(result.json, 200);
  const header = new TextEncoder().encode(JSON.stringify(result.json));
  const total = header.byteLength + result.binary.reduce((n, b) => n + b.byteLength, 0);
  const body = new Uint8Array(total);
  body.set(header, 0);
  let off = header.byteLength;
  for (const b of result.binary) {
    body.set(b, off);
    off += b.byteLength;
  }
  return c.body(body, 200, { "Content-Type": "application/octet-stream", [HEADER_LENGTH]: String(header.byteLength) });
}
