// Open Inference Protocol (KServe v2) shapes.
import { z } from "@hono/zod-openapi";
import { DATATYPES } from "../runtime/tensors";

const Parameters = z.record(z.string(), z.unknown());

export const InferTensor = z
  .object({
    name: z.string().min(1).max(256),
    shape: z.array(z.number().int().min(0)).max(32),
    datatype: z.enum(DATATYPES),
    parameters: Parameters.optional().openapi({
      description: "`binary_data_size`: the input's bytes follow the JSON header (binary extension). `shared_memory_region`, `shared_memory_byte_size` and optional `shared_memory_offset`: they are in a registered shared memory region (/v2/systemsharedmemory).",
    }),
    // Checked as an array only: element checks happen once, against the model, in one pass.
    data: z.custom<unknown[]>((v) => Array.isArray(v), "data must be an array").optional().openapi({
      type: "array",
      items: {},
      description: "Row-major values, flat or nested; BYTES as strings, BOOL as true/false. INT64 and UINT64 up to 2^53 − 1 in size: JSON numbers past it arrive rounded and are refused; send those with `binary_data_size`.",
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
      .openapi({ description: "Which outputs to return (default: all). `parameters.binary_data: true` returns one as binary; `shared_memory_region` and `shared_memory_byte_size` (and optional `shared_memory_offset`) write it to a registered shared memory region." }),
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
        data: z.array(z.unknown()).optional().openapi({ description: "Row-major, flat. INT64 and UINT64 are written with their exact digits, past 2^53 too: parse them with a JSON reader that keeps 64-bit integers." }),
        parameters: z
          .union([
            z.object({ binary_data_size: z.number().int() }),
            z.object({ shared_memory_region: z.string(), shared_memory_offset: z.number().int(), shared_memory_byte_size: z.number().int().openapi({ description: "The bytes written there." }) }),
          ])
          .optional()
          .openapi({ description: "`binary_data_size`: the output's bytes follow the JSON (binary extension). `shared_memory_*`: the output was written to the client's region, and has no data here." }),
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

const ConfigTensor = z.object({ name: z.string(), data_type: z.string().openapi({ example: "TYPE_FP32" }), dims: z.array(z.number().int()) }).passthrough();

export const ModelConfig = z
  .object({
    name: z.string(),
    platform: z.literal("onnxruntime_onnx"),
    backend: z.literal("onnxruntime"),
    version_policy: z.object({ specific: z.object({ versions: z.array(z.number().int()) }) }),
    max_batch_size: z.number().int().openapi({ description: "Above 0 only while dynamic batching is on; then `dims` leave out the batch dimension." }),
    input: z.array(ConfigTensor),
    output: z.array(ConfigTensor),
    dynamic_batching: z
      .object({ preferred_batch_size: z.array(z.number().int()), max_queue_delay_microseconds: z.number().int() })
      .passthrough()
      .optional()
      .openapi({ description: "Present when the model batches (PATCH /api/v1/models/{id} `batching`)." }),
    instance_group: z.array(z.object({ name: z.string(), kind: z.enum(["KIND_CPU", "KIND_GPU"]), count: z.number().int() }).passthrough()),
    parameters: z.record(z.string(), z.object({ string_value: z.string() })),
  })
  .passthrough()
  .openapi("ModelConfig", { description: "Triton's ModelConfig in its JSON form, as tritonclient and perf_analyzer read it." });

const Duration = z.object({ count: z.number().int(), ns: z.number().int() });
export const ModelStatistics = z
  .object({
    model_stats: z.array(
      z.object({
        name: z.string(),
        version: z.string(),
        last_inference: z.number().int().openapi({ description: "ms since epoch; 0 before the first request." }),
        inference_count: z.number().int(),
        execution_count: z.number().int(),
        inference_stats: z.object({
          success: Duration,
          fail: Duration,
          queue: Duration,
          compute_input: Duration,
          compute_infer: Duration,
          compute_output: Duration,
          cache_hit: Duration,
          cache_miss: Duration,
        }),
        batch_stats: z.array(z.object({ batch_size: z.number().int(), compute_input: Duration, compute_infer: Duration, compute_output: Duration })),
      }),
    ),
  })
  .openapi("ModelStatistics", {
    description:
      "Since the process started, per registered version. `queue`: from the request reaching the model's worker queue until its execution starts. `compute_input`/`compute_output`: turning JSON or binary tensors into the session's tensors and back. Every request of a merged batch reports the whole batch's compute time, as Triton does.",
  });

export const ShmRegionStatus = z
  .object({ name: z.string(), key: z.string(), offset: z.number().int(), byte_size: z.number().int() })
  .openapi("SystemSharedMemoryRegion");
export const ShmRegisterBody = z.object({
  key: z.string().min(1).max(256),
  offset: z.number().int().min(0).default(0),
  byte_size: z.number().int().min(1),
});

export const RepositoryIndexBody = z.object({ ready: z.boolean().optional() });
export const RepositoryActionBody = z.object({ parameters: z.record(z.string(), z.unknown()).optional() });
