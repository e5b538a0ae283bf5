// Open Inference Protocol (KServe v2) shapes.
import { z } from "@hono/zod-openapi";
import { DATATYPES } from "../runtime/tensors";

const Parameters = z.record(z.string(), z.unknown());

export const InferTensor = z
  .object({
    name: z.string().min(1).max(256),
    shape: z.array(z.number().int().min(0)).max(32),
    datatype: z.enum(DATATYPES),
    parameters: Parameters.optional().openapi({ description: "`binary_data_size`: the input's bytes follow the JSON header (binary extension)." }),
    // Checked as an array only: element checks happen once, against the model, in one pass.
    data: z.custom<unknown[]>((v) => Array.isArray(v), "data must be an array").optional().openapi({
      type: "array",
      items: {},
      description: "Row-major values, flat or nested; BYTES as strings, BOOL as true/false.",
    }),
  })
  .openapi("InferInputTensor");

export const InferRequestSchema = z
  .object({
    id: z.string().max(256).optional(),
    parameters: Parameters.optional().openapi({ description: "`binary_data_output: true` returns every output through the binary extension." }),
    inputs: z.array(InferTensor).min(1).max(1024),
    outputs: z
      .array(z.object({ name: z.string().min(1).max(256), parameters: Parameters.optional() }))
      .max(1024)
      .optional()
      .openapi({ description: "Which outputs to return (default: all). `parameters.binary_data: true` returns one as binary." }),
  })
  .openapi("InferRequest");

export const InferResponse = z
  .object({
    model_name: z.string(),
    model_version: z.string(),
    id: z.string().optional(),
    outputs: z.array(
      z.object({
        name: z.string(),
        datatype: z.enum(DATATYPES),
        shape: z.array(z.number().int()),
        data: z.array(z.unknown()).optional(),
        parameters: z.object({ binary_data_size: z.number().int() }).optional(),
      }),
    ),
  })
  .openapi("InferResponse");

export const ProtocolError = z.object({ error: z.string() }).openapi("ProtocolError");

export const MetadataTensor = z.object({ name: z.string(), datatype: z.string(), shape: z.array(z.number().int()) }).openapi("MetadataTensor");

export const ModelMetadata = z
  .object({
    name: z.string(),
    versions: z.array(z.string()),
    platform: z.literal("onnxruntime_onnx"),
    inputs: z.array(MetadataTensor),
    outputs: z.array(MetadataTensor),
  })
  .openapi("ModelMetadata");

export const RepositoryEntry = z
  .object({ name: z.string(), version: z.string(), state: z.string(), reason: z.string() })
  .openapi("RepositoryIndexEntry");

export function protocolErrors(...statuses: number[]) {
  return Object.fromEntries(
    statuses.map((s) => [s, { description: "Error in the protocol's shape", content: { "application/json": { schema: ProtocolError } } }]),
  );
}
