// Reading JSON bodies by hand, for routes whose clients send no Content-Type
// (Triton's) or a binary framing: the same errors as the validated routes.
import type { Context } from "hono";
import { ZodError, type z } from "zod";
import { AppError } from "../errors";
import type { AppEnv } from "./env";
import { validationError } from "./errors";

export const malformedJson = () => new AppError("MALFORMED_JSON", "request body is not valid JSON");

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw malformedJson();
  }
}

export function parseWith<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  try {
    return schema.parse(value);
  } catch (err) {
    if (err instanceof ZodError) throw validationError(err);
    throw err;
  }
}

/** An optional JSON body: empty reads as `{}`. */
export async function optionalJson<S extends z.ZodType>(c: Context<AppEnv>, schema: S): Promise<z.infer<S>> {
  const text = await c.req.text();
  return parseWith(schema, text.trim() === "" ? {} : parseJson(text));
}
