// Maps every failure to one response shape: {"error":{"code","message","requestId"}}
// on /api/v1, and the Open Inference Protocol's {"error": "..."} on /v2.
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { ZodError } from "zod";
import { AppError, protocolStatus, type ErrorCode } from "../errors";
import type { AppEnv } from "./env";

export function validationError(err: ZodError): AppError {
  const summary = err.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
  return new AppError("VALIDATION_ERROR", summary, err.issues);
}

export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof ZodError) return validationError(err);
  if (err instanceof HTTPException) {
    if (err.status === 413) return new AppError("PAYLOAD_TOO_LARGE", "request body is too large");
    if (err.status === 400 && /json/i.test(err.message)) return new AppError("MALFORMED_JSON", "request body is not valid JSON");
    if (err.status === 401) return new AppError("UNAUTHORIZED", err.message);
    if (err.status === 415) return new AppError("UNSUPPORTED_MEDIA_TYPE", "the body must be JSON: send Content-Type: application/json");
    const code: ErrorCode = err.status === 404 ? "NOT_FOUND" : err.status < 500 ? "VALIDATION_ERROR" : "INTERNAL";
    return new AppError(code, err.message);
  }
  return new AppError("INTERNAL", "internal error");
}

export function errorResponse(c: Context<AppEnv>, err: AppError): Response {
  const headers: Record<string, string> = { ...err.headers };
  if (err.status === 401) headers["WWW-Authenticate"] = 'Bearer realm="modeld"';
  if (c.get("errorShape") === "protocol") return c.json({ error: err.message }, protocolStatus(err) as 400, headers);
  const body = {
    error: { code: err.code, message: err.message, requestId: c.get("requestId") ?? "", ...(err.details ? { details: err.details } : {}) },
  };
  return c.json(body, err.status as 400, headers);
}

export function onError(err: unknown, c: Context<AppEnv>): Response {
  const appErr = toAppError(err);
  // Only what nobody foresaw. A 503 with its code (a full queue, a model unloading, a
  // failed disk that is logged where it fails) is an answer: logged with its stack, a
  // full queue wrote 13,000 error lines (10 MB) in 5 s of overload.
  if (appErr.code === "INTERNAL") {
    (c.get("log") ?? console).error("request failed", { error: String(err), stack: (err as Error)?.stack });
  }
  return errorResponse(c, appErr);
}
