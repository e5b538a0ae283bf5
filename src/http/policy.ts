// Routes are grouped by policy: error shape, body limit, audit and access come
// from the router a route is registered on, never from its path. A new route
// picks a router; nothing else needs editing.
import type { OpenAPIHono, RouteConfig } from "@hono/zod-openapi";
import type { Context, Handler, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { AuditRepo } from "../db/audit.repo";
import { AppError } from "../errors";
import { concatBytes } from "../runtime/protocol";
import { auditChanges } from "./audit";
import type { AppEnv, ErrorShape } from "./env";

export interface Policy {
  /** `api`: {"error":{code,message,requestId}}; `protocol`: the Open Inference Protocol's {"error": "..."}. */
  errors: ErrorShape;
  /** Largest request body, compressed and decoded. */
  maxBodyBytes: number;
  /** Records every call but reads in the audit log, refused ones included. */
  audit?: AuditRepo;
  /** Authentication and authorization, in order. */
  access: MiddlewareHandler<AppEnv>[];
}

export interface PolicyRouter {
  openapi: OpenAPIHono<AppEnv>["openapi"];
  get(path: string, handler: Handler<AppEnv>): void;
  post(path: string, handler: Handler<AppEnv>): void;
  /** Documents a route registered with get or post. */
  doc(route: RouteConfig): void;
  /** Answers every method on `path` that no route before it answered (not a documented endpoint). */
  fallback(path: string, handler: Handler<AppEnv>): void;
}

const ENCODINGS = ["gzip", "deflate"] as const;
type Encoding = (typeof ENCODINGS)[number];

async function readLimited(stream: ReadableStream<Uint8Array>, maxBytes: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += chunk.byteLength;
    if (size > maxBytes) throw new AppError("PAYLOAD_TOO_LARGE", `the decoded request body exceeds ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  return concatBytes(chunks);
}

/**
 * Triton's clients compress request bodies with gzip or deflate when asked to.
 * The decoded body is held to the same limit, so a small bomb cannot expand
 * past it; other encodings are refused rather than read as garbage.
 */
function decodeContentEncoding(maxBytes: number): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const encoding = c.req.header("content-encoding")?.trim().toLowerCase();
    // Reads carry no body to decode.
    if (!encoding || encoding === "identity" || c.req.method === "GET" || c.req.method === "HEAD") return next();
    if (!ENCODINGS.includes(encoding as Encoding)) {
      throw new AppError("UNSUPPORTED_MEDIA_TYPE", `Content-Encoding ${encoding} is not supported; send gzip, deflate or identity`);
    }
    const raw = c.req.raw;
    let body: Uint8Array = new Uint8Array();
    if (raw.body) {
      try {
        body = await readLimited(raw.body.pipeThrough(new DecompressionStream(encoding as Encoding)), maxBytes);
      } catch (err) {
        if (err instanceof AppError) throw err;
        throw new AppError("VALIDATION_ERROR", `the request body is not valid ${encoding} data`);
      }
    }
    const headers = new Headers(raw.headers);
    headers.delete("content-encoding");
    headers.set("content-length", String(body.byteLength));
    c.req.raw = new Request(raw.url, { method: raw.method, headers, body });
    await next();
  };
}

/**
 * A declared Content-Length is checked as it stands: the server never reads past
 * it. Only other bodies (chunked) go through Hono's bodyLimit, which counts them
 * as they stream. Hono's asks for the body stream first on every request, and
 * under Bun that alone cost 2.6% of the HTTP thread at c=64. The same reading of
 * the length decides whether the body is empty (dropTypeOfEmptyBody). With that
 * check reading the headers again on its own, one wrk A/B at c=64 put the HTTP
 * thread at 99 against 76 µs per request (the host's spread is wide).
 */
function limitBody(maxBytes: number): MiddlewareHandler<AppEnv> {
  const tooLarge = () => new AppError("PAYLOAD_TOO_LARGE", `request body exceeds ${maxBytes} bytes`);
  const counted = bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw tooLarge();
    },
  });
  return (c, next) => {
    const headers = c.req.raw.headers;
    const declared = headers.get("content-length");
    // Inference declares a length: this costs it one comparison.
    if (declared === "0" || declared === null) dropTypeOfEmptyBody(c, declared);
    if (declared === null || headers.has("transfer-encoding")) return counted(c, next);
    if (Number(declared) > maxBytes) throw tooLarge();
    return next();
  };
}

/**
 * An empty body is no body, whatever Content-Type it names: `curl -X POST -H
 * "Content-Type: application/json" …/load` was refused as "not valid JSON" on a route
 * whose body is optional. Without the type, each route says what it needs of a body.
 */
function dropTypeOfEmptyBody(c: Context<AppEnv>, declaredLength: string | null): void {
  const raw = c.req.raw;
  if (!raw.headers.has("content-type")) return;
  // Of unknown length (chunked, or a Request made in-process): empty only if it has no stream.
  if (declaredLength === null && raw.body !== null) return;
  const headers = new Headers(raw.headers);
  headers.delete("content-type");
  c.req.raw = new Request(raw.url, { method: raw.method, headers });
}

/**
 * The policy's own checks, in one middleware: each layer Hono composes costs a
 * dispatch, and these run on every request, inference included.
 */
function policyGate(p: Policy): MiddlewareHandler<AppEnv> {
  const limit = limitBody(p.maxBodyBytes);
  const decode = decodeContentEncoding(p.maxBodyBytes);
  return (c, next) => {
    c.set("errorShape", p.errors);
    return limit(c, async () => void (await decode(c, next)));
  };
}

function policyChain(p: Policy): MiddlewareHandler<AppEnv>[] {
  return [policyGate(p), ...(p.audit ? [auditChanges(p.audit)] : []), ...p.access];
}

const asArray = <T>(x: T | T[] | undefined): T[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);

export function policyRouter(app: OpenAPIHono<AppEnv>, policy: Policy): PolicyRouter {
  const chain = policyChain(policy);
  return {
    openapi: ((route: RouteConfig, handler: never, hook?: never) =>
      app.openapi({ ...route, middleware: [...chain, ...asArray(route.middleware as MiddlewareHandler<AppEnv>[] | undefined)] }, handler, hook)) as never,
    get: (path, handler) => void app.on("GET", [path], ...chain, handler as MiddlewareHandler<AppEnv>),
    post: (path, handler) => void app.on("POST", [path], ...chain, handler as MiddlewareHandler<AppEnv>),
    doc: (route) => void app.openAPIRegistry.registerPath(route),
    fallback: (path, handler) => void app.all(path, ...(chain as [MiddlewareHandler<AppEnv>]), handler as MiddlewareHandler<AppEnv>),
  };
}
