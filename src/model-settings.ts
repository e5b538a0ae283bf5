// A model's settings: one zod schema for PATCH validation, the stored JSON, the
// model object and the OpenAPI document. Each setting is a top-level field of
// the model object, under the same name as in the PATCH body.
import { z } from "@hono/zod-openapi";
import { KEEP_ALIVE_PATTERN, parseKeepAlive } from "./units";

export const PROVIDERS = ["cuda", "cpu"] as const;

export const Warmup = z
  .object({
    runs: z.number().int().min(0).max(1000).openapi({ description: "Runs on zero-filled inputs before a loading version may serve. 0 turns warmup off." }),
    shapes: z
      .record(z.string().min(1).max(256), z.array(z.number().int().min(1).max(1 << 20)).max(32))
      .optional()
      .openapi({ description: "Warmup shape per input name; dynamic dimensions not given here are 1. A shape over MODELD_MAX_TENSOR_ELEMENTS elements is refused." }),
  })
  .strict()
  .openapi("Warmup");
export type Warmup = z.infer<typeof Warmup>;

export const Providers = z
  .array(z.enum(PROVIDERS))
  .min(1)
  .openapi({ description: "Execution providers for this model, overriding MODELD_EXECUTION_PROVIDERS; null restores the global setting." });

export const KeepAlive = z
  .string()
  .regex(KEEP_ALIVE_PATTERN, "-1 (forever), 0, or a duration like 30s, 5m, 1h")
  .openapi({ description: "How long the model stays loaded after its last request: a duration like 5m, 0 (unload once idle) or -1 (forever). null: MODELD_KEEP_ALIVE.", example: "5m" });

export const Pinned = z.boolean().openapi({ description: "Never evicted for room, never expired for idleness." });

export const Batching = z
  .object({
    maxBatchSize: z.number().int().min(1).max(4096).openapi({ description: "Most rows one merged run may hold." }),
    maxQueueDelayUs: z.number().int().min(0).max(1_000_000).default(0).openapi({ description: "The most a request waits for others to join its batch, in µs, from its arrival at the session's thread: the batch leaves once the waiting rows can make a preferred size (the largest they can) or fill maxBatchSize, or once its first request has waited this long. 0: requests that arrive while the session is busy are merged into its next run, and a lone request is never delayed." }),
    preferredBatchSizes: z.array(z.number().int().min(1).max(4096)).max(16).optional().openapi({ description: "With a delay: batch sizes worth waiting for, none over maxBatchSize; a batch leaves with one as soon as the waiting rows can make it." }),
  })
  .strict()
  // No batch can be made at a size over maxBatchSize: refused, as Triton refuses it.
  .refine((b) => (b.preferredBatchSizes ?? []).every((p) => p <= b.maxBatchSize), { message: "every preferredBatchSizes entry must be at most maxBatchSize", path: ["preferredBatchSizes"] })
  .openapi("Batching", {
    description:
      "Dynamic batching along dimension 0, for models whose inputs and outputs all have a dynamic first dimension (otherwise it stays off). Turn it on only where that dimension is a batch of independent rows, as Triton's max_batch_size declares: merging requests along a sequence dimension changes their answers. Requests with other non-batch dimensions or other requested outputs are never merged. Takes effect at the next load.",
  });
export type Batching = z.infer<typeof Batching>;

/** ONNX Runtime session options; each one absent means ONNX Runtime's own default. */
export const SessionSettings = z
  .object({
    intraOpThreads: z.number().int().min(0).max(256).optional().openapi({ description: "Threads inside one operator; 0 lets ONNX Runtime choose (one per physical core)." }),
    interOpThreads: z.number().int().min(0).max(256).optional().openapi({ description: "Threads across operators, used with executionMode parallel; 0 lets ONNX Runtime choose." }),
    graphOptimizationLevel: z.enum(["disabled", "basic", "extended", "all"]).optional().openapi({ description: "How much ONNX Runtime rewrites the graph at load (default all)." }),
    executionMode: z.enum(["sequential", "parallel"]).optional().openapi({ description: "Run independent operators one at a time (default) or in parallel." }),
  })
  .strict()
  .openapi("SessionSettings", { description: "Taken into account at the next load; loading the serving version then swaps in a fresh session without downtime." });
export type SessionSettings = z.infer<typeof SessionSettings>;

/** Every field optional: a PATCH changes only what it names. Unknown fields are refused. */
export const ModelSettingsPatch = z
  .object({
    warmup: Warmup.optional(),
    providers: Providers.nullable().optional(),
    keepAlive: KeepAlive.nullable().optional(),
    pinned: Pinned.optional(),
    session: SessionSettings.nullable().optional(),
    batching: Batching.nullable().optional(),
  })
  .strict()
  .openapi("ModelSettingsPatch");
export type ModelSettingsPatch = z.infer<typeof ModelSettingsPatch>;

/** What the model object shows, defaults filled in. */
export interface ModelSettings {
  warmup: Warmup;
  providers: (typeof PROVIDERS)[number][] | null;
  /** Null: MODELD_KEEP_ALIVE applies. */
  keepAlive: string | null;
  pinned: boolean;
  session: SessionSettings;
  /** Null: off. */
  batching: Batching | null;
}

export const DEFAULT_SETTINGS: ModelSettings = { warmup: { runs: 0 }, providers: null, keepAlive: null, pinned: false, session: {}, batching: null };

export function withDefaults(stored: Partial<ModelSettings>): ModelSettings {
  return { ...DEFAULT_SETTINGS, ...stored };
}

/** A PATCH applied to stored settings; `null` clears a setting back to its default. */
export function applyPatch(stored: Partial<ModelSettings>, patch: ModelSettingsPatch): Partial<ModelSettings> {
  const next: Record<string, unknown> = { ...stored };
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) continue;
    if (v === null) delete next[k];
    else next[k] = v;
  }
  return next as Partial<ModelSettings>;
}

/** How long the model stays loaded when idle, in ms: its own keepAlive, else the global one; -1 forever. */
export function keepAliveMs(s: ModelSettings, globalMs: number): number {
  return s.keepAlive === null ? globalMs : parseKeepAlive(s.keepAlive);
}
