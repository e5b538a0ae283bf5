// The Open Inference Protocol over gRPC (inference.GRPCInferenceService), on
// MODELD_GRPC_PORT. It is a second transport beside HTTP: each call is
// authorized by the same rules (a Bearer token in the `authorization`
// metadata, the same roles), runs the same service functions, and maps
// modeld's error codes to gRPC status codes once, here.
import * as grpc from "@grpc/grpc-js";
import { ANONYMOUS, bearerToken, inferenceCaller, refusal, type Principal, type TokenVerifier } from "../auth";
import type { Deps } from "../context";
import { AppError, type ErrorCode } from "../errors";
import { infer, type InferRequest } from "../services/inference.service";
import { cudaSharedMemoryRefused } from "../services/shared-memory";
import {
  modelConfig,
  modelMetadata,
  modelReady,
  modelStats,
  repositoryIndex,
  runRepositoryAction,
  serverExtensions,
} from "../services/triton.service";
import type { RequestTensor, ResponseTensor } from "../runtime/tensors";
import { parseWith } from "../http/body";
import { InferRequestSchema } from "../http/v2.schemas";
import { healthService, inferenceService } from "./definition";

export interface GrpcOptions {
  host: string;
  port: number;
  version: string;
  isDraining?: () => boolean;
  isReady?: () => boolean;
}

export interface GrpcServer {
  port: number;
  /** Lets calls in progress finish within the bound, then closes what is left. */
  stop(timeoutMs: number): Promise<void>;
}

type Access = "open" | "inference" | "admin";
type Handler = (request: any, principal: Principal) => unknown | Promise<unknown>;

const STATUS_BY_CODE: Partial<Record<ErrorCode, grpc.status>> = {
  UNAUTHORIZED: grpc.status.UNAUTHENTICATED,
  FORBIDDEN: grpc.status.PERMISSION_DENIED,
  MODEL_NOT_LOADED: grpc.status.UNAVAILABLE,
  NO_ACTIVE_MODEL: grpc.status.UNAVAILABLE,
  MODEL_UNAVAILABLE: grpc.status.UNAVAILABLE,
  QUEUE_FULL: grpc.status.UNAVAILABLE,
  PAYLOAD_TOO_LARGE: grpc.status.RESOURCE_EXHAUSTED,
  TOO_MANY_JOBS: grpc.status.RESOURCE_EXHAUSTED,
  STORAGE_FULL: grpc.status.RESOURCE_EXHAUSTED,
  STORAGE_FAILED: grpc.status.UNAVAILABLE,
  AUTH_UNAVAILABLE: grpc.status.UNAVAILABLE,
};

/** What a call failed with, as modeld's error; anything unforeseen is INTERNAL. */
const asAppError = (err: unknown): AppError => (err instanceof AppError ? err : new AppError("INTERNAL", "internal error"));

function toStatus(err: unknown): grpc.ServiceError {
  const e = asAppError(err);
  const code =
    STATUS_BY_CODE[e.code] ??
    (e.status === 404 ? grpc.status.NOT_FOUND : e.status === 409 ? grpc.status.FAILED_PRECONDITION : e.status < 500 ? grpc.status.INVALID_ARGUMENT : grpc.status.INTERNAL);
  return Object.assign(new Error(e.message), { code, details: e.message, metadata: new grpc.Metadata() });
}

/** A protocol parameter value ({bool_param: true}, {int64_param: "3"} …) as the plain value the HTTP path sees. */
function parameterValue(p: Record<string, unknown>): unknown {
  const choice = p.parameter_choice as string | undefined;
  if (!choice) return undefined;
  // Offsets and sizes: a number, as in an HTTP body (definition.ts reads 64-bit fields as strings).
  return choice === "int64_param" || choice === "uint64_param" ? Number(p[choice]) : p[choice];
}
const plainParameters = (map: Record<string, Record<string, unknown>> | undefined) =>
  Object.fromEntries(Object.entries(map ?? {}).map(([k, v]) => [k, parameterValue(v)]));

/** Where an output written to shared memory went, in the protocol's parameters; nothing for the others (their bytes are raw contents). */
function sharedMemoryParameters(o: ResponseTensor): Record<string, Record<string, unknown>> | undefined {
  if (!o.parameters || !("shared_memory_region" in o.parameters)) return undefined;
  return Object.fromEntries(Object.entries(o.parameters).map(([k, v]) => [k, typeof v === "string" ? { string_param: v } : { int64_param: v }]));
}

/** The address in grpc-js's peer string ("127.0.0.1:5000", "[::1]:5000", "ipv4:…"), as HTTP's audit entries give it. */
function peerAddress(peer: string): string | null {
  const m = /^(?:ipv[46]:)?\[?([^\]]*?)\]?:\d+$/.exec(peer);
  return m ? m[1]! : peer || null;
}

const CONTENTS: Record<string, string> = {
  BOOL: "bool_contents",
  INT8: "int_contents", INT16: "int_contents", INT32: "int_contents", INT64: "int64_contents",
  UINT8: "uint_contents", UINT16: "uint_contents", UINT32: "uint_contents", UINT64: "uint64_contents",
  FP32: "fp32_contents", FP64: "fp64_contents", BYTES: "bytes_contents",
};

/** A ModelInferRequest as the request the HTTP path builds: raw contents become binary inputs, typed contents become data. */
function toInferRequest(req: any): InferRequest {
  const raw: Buffer[] = req.raw_input_contents ?? [];
  // As tritonclient sends them: one raw entry per input that is not in shared memory.
  const inShm = (t: any) => t.parameters?.shared_memory_region !== undefined;
  const rawInputs = (req.inputs as any[]).filter((t) => !inShm(t)).length;
  if (raw.length && raw.length !== rawInputs) {
    throw new AppError("INVALID_TENSOR", `raw_input_contents has ${raw.length} entries for ${rawInputs} inputs not in shared memory`);
  }
  let next = 0;
  const inputs = (req.inputs as any[]).map((t): RequestTensor => {
    const parameters = plainParameters(t.parameters);
    const base = { name: t.name, datatype: t.datatype, shape: t.shape.map(Number), ...(Object.keys(parameters).length ? { parameters } : {}) };
    if (inShm(t)) {
      if (Object.values(t.contents ?? {}).some((v) => Array.isArray(v) && v.length)) throw new AppError("INVALID_TENSOR", `input ${t.name}: give contents or shared_memory_region, not both`);
      return base;
    }
    if (raw.length) return { ...base, data: undefined, binary: new Uint8Array(raw[next++]!) };
    const field = CONTENTS[t.datatype];
    if (!field) throw new AppError("INVALID_TENSOR", `input ${t.name}: ${t.datatype} data must come in raw_input_contents`);
    const values = (t.contents?.[field] ?? []) as unknown[];
    if (t.datatype === "BYTES") return { ...base, data: values.map((b) => new TextDecoder().decode(b as Buffer)) };
    // Decimal strings (definition.ts): as BigInts they stay exact past 2^53.
    return { ...base, data: field === "int64_contents" || field === "uint64_contents" ? values.map((v) => BigInt(v as string)) : values };
  });
  const request = {
    ...(req.id ? { id: req.id } : {}),
    // Outputs always travel as raw_output_contents, as Triton's gRPC server sends them.
    parameters: { ...plainParameters(req.parameters), binary_data_output: true },
    inputs,
    ...(req.outputs?.length ? { outputs: (req.outputs as any[]).map((o) => ({ name: o.name, parameters: plainParameters(o.parameters) })) } : {}),
  };
  // The same schema as HTTP bodies (names, shapes, counts); raw bytes are attached after it, as on HTTP.
  const valid = parseWith(InferRequestSchema, { ...request, inputs: inputs.map(({ binary: _, ...t }) => t) }) as InferRequest;
  valid.inputs.forEach((t, i) => (t.binary = inputs[i]!.binary));
  return valid;
}

/** Refusals that end a stream rather than one of its requests: its credentials do not change. */
const ENDS_STREAM: ReadonlySet<ErrorCode> = new Set(["UNAUTHORIZED", "FORBIDDEN", "AUTH_UNAVAILABLE"]);

/**
 * ModelStreamInfer, as Triton's clients use it (tritonclient's start_stream and
 * async_stream_infer, perf_analyzer --streaming): each request on the stream is
 * run as ModelInfer runs it and answered when done, in completion order, the
 * client matching answers by id. A request that fails is answered with its
 * error_message and the stream goes on; a token refused ends the stream with
 * its status, as the same token would end a unary call.
 */
function inferStreams(run: (call: grpc.ServerDuplexStream<any, any>, request: any) => Promise<object>, d: Pick<Deps, "log">) {
  const open = new Set<() => void>();
  return {
    open(call: grpc.ServerDuplexStream<any, any>): void {
      let inflight = 0;
      let closing = false;
      let ended = false;
      const end = (status?: grpc.ServiceError) => {
        if (ended) return;
        ended = true;
        open.delete(close);
        if (status) call.emit("error", status);
        else call.end();
      };
      const endWhenAnswered = () => closing && inflight === 0 && end();
      const close = () => ((closing = true), endWhenAnswered());
      open.add(close);
      call.on("data", (request: any) => {
        if (ended) return;
        inflight++;
        const answer = closing ? Promise.reject(new AppError("MODEL_UNAVAILABLE", "modeld is shutting down")) : run(call, request);
        answer
          .then(
            (response) => ({ error_message: "", infer_response: response }),
            (err) => {
              const e = asAppError(err);
              if (ENDS_STREAM.has(e.code)) throw e;
              if (e.code === "INTERNAL") d.log.error("grpc stream request failed", { error: String(err), stack: (err as Error)?.stack });
              return { error_message: e.message, infer_response: { id: request.id ?? "", model_name: request.model_name ?? "", model_version: request.model_version ?? "" } };
            },
          )
          .then((message) => ended || call.write(message), (err) => end(toStatus(err)))
          .finally(() => (inflight--, endWhenAnswered()));
      });
      call.on("end", close);
      call.on("cancelled", () => ((ended = true), open.delete(close)));
      call.on("error", () => ((ended = true), open.delete(close)));
    },
    closeAll(): void {
      for (const close of [...open]) close();
    },
  };
}

export async function startGrpcServer(d: Deps, verify: TokenVerifier, opts: GrpcOptions): Promise<GrpcServer> {
  const { service } = inferenceService();
  const auth = d.config.auth;

  /** `verified` hears who called as soon as the token is checked, so an admin refusal is audited under the caller's name. */
  const authorize = async (metadata: grpc.Metadata, access: Access, verified: (p: Principal) => void): Promise<Principal> => {
    if (access === "open") return ANONYMOUS;
    const header = metadata.get("authorization")[0]?.toString();
    if (access === "inference") return inferenceCaller(header, auth, verify);
    const principal = await verify(bearerToken(header));
    verified(principal);
    const refused = refusal(principal, auth, ["admin"]);
    if (refused) throw refused;
    return principal;
  };

  /** An admin change's audit entry, as the HTTP routes write it: refused calls included, and folded alike. */
  const audit = (action: string, call: grpc.ServerUnaryCall<any, any>, principal: Principal | undefined, err?: unknown) => {
    const failed = err === undefined ? undefined : asAppError(err);
    const actor = principal?.sub ?? "unauthenticated";
    const sourceIp = peerAddress(call.getPeer());
    const status = failed?.status ?? 200;
    const repeats = d.audit.admit(actor, sourceIp, status);
    if (repeats === undefined) return;
    try {
      d.audit.record({ actor, action: `gRPC ${action}`, target: call.request?.model_name || null, sourceIp, status, outcome: failed?.code ?? "ok", requestId: null, repeats });
    } catch (e) {
      d.log.warn("could not record a gRPC call in the audit log", { action, error: String(e) });
    }
  };

  const unary =
    (access: Access, handler: Handler, audited?: string): grpc.handleUnaryCall<any, any> =>
    (call, callback) => {
      let principal: Principal | undefined;
      authorize(call.metadata, access, (p) => (principal = p))
        .then((p) => handler(call.request, p))
        .then((response) => {
          if (audited) audit(audited, call, principal);
          callback(null, response as object);
        })
        .catch((err) => {
          if (!(err instanceof AppError)) d.log.error("grpc call failed", { error: String(err), stack: (err as Error)?.stack });
          if (audited) audit(audited, call, principal, err);
          callback(toStatus(err));
        });
    };
  const version = (v: string) => (v === "" ? undefined : v);

  const inferCall = async (r: any, principal: Principal) => {
    const result = await infer(r.model_name, version(r.model_version), toInferRequest(r), d, principal.sub);
    const binary = result.binary.values();
    return {
      model_name: result.json.model_name,
      model_version: result.json.model_version,
      id: result.json.id ?? "",
      outputs: result.json.outputs.map((o) => ({ name: o.name, datatype: o.datatype, shape: o.shape, parameters: sharedMemoryParameters(o) })),
      // One entry per output, as Triton sends them: empty for an output written to shared memory.
      raw_output_contents: result.json.outputs.map((o) => {
        if (sharedMemoryParameters(o)) return Buffer.alloc(0);
        const b = binary.next().value!;
        return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
      }),
    };
  };
  const streams = inferStreams(async (call, r) => inferCall(r, await authorize(call.metadata, "inference", () => {})), d);

  // grpc-js refuses messages over 4 MiB by default; tensors may be as large as HTTP bodies.
  const limit = d.config.maxBodyBytes;
  const server = new grpc.Server({ "grpc.max_receive_message_length": limit, "grpc.max_send_message_length": limit });
  server.addService(service, {
    ServerLive: unary("open", () => ({ live: true })),
    ServerReady: unary("open", () => ({ ready: !opts.isDraining?.() && opts.isReady?.() !== false })),
    ServerMetadata: unary("inference", () => ({ name: "modeld", version: opts.version, extensions: serverExtensions(d) })),
    ModelReady: unary("inference", (r) => ({ ready: modelReady(r.name, version(r.version), d) })),
    ModelMetadata: unary("inference", (r) => modelMetadata(r.name, version(r.version), d)),
    ModelConfig: unary("inference", (r) => ({ config: modelConfig(r.name, version(r.version), d) })),
    ModelStatistics: unary("inference", (r) => modelStats(r.name === "" ? undefined : r.name, version(r.version), d)),
    ModelInfer: unary("inference", (r, principal) => inferCall(r, principal)),
    ModelStreamInfer: (call: grpc.ServerDuplexStream<any, any>) => streams.open(call),
    RepositoryIndex: unary("admin", (r) => ({ models: repositoryIndex(r.ready === true, d) })),
    RepositoryModelLoad: unary("admin", async (r, principal) => {
      await runRepositoryAction("load", r.model_name, plainParameters(r.parameters), principal.sub, d);
      return {};
    }, "RepositoryModelLoad"),
    RepositoryModelUnload: unary("admin", async (r, principal) => {
      await runRepositoryAction("unload", r.model_name, plainParameters(r.parameters), principal.sub, d);
      return {};
    }, "RepositoryModelUnload"),
    // As on HTTP: registering opens memory of this host to inference callers, so admin only, and audited.
    SystemSharedMemoryStatus: unary("admin", (r) => ({ regions: Object.fromEntries(d.shm.status(r.name === "" ? undefined : r.name).map((s) => [s.name, s])) })),
    SystemSharedMemoryRegister: unary("admin", async (r) => {
      await d.shm.register(r.name, r.key, Number(r.offset), Number(r.byte_size));
      return {};
    }, "SystemSharedMemoryRegister"),
    SystemSharedMemoryUnregister: unary("admin", async (r) => {
      await d.shm.unregister(r.name === "" ? undefined : r.name);
      return {};
    }, "SystemSharedMemoryUnregister"),
    CudaSharedMemoryStatus: unary("admin", () => ({ regions: {} })),
    CudaSharedMemoryRegister: unary("admin", () => {
      throw cudaSharedMemoryRefused();
    }),
    CudaSharedMemoryUnregister: unary("admin", () => ({})),
  });

  // The health protocol's overall status (service "") is readiness, as Triton answers it;
  // the inference service's name asks the same. Any other name is unknown.
  server.addService(healthService().service, {
    Check: unary("open", (r) => {
      if (r.service !== "" && r.service !== "inference.GRPCInferenceService") throw new AppError("NOT_FOUND", `unknown service ${r.service}`);
      return { status: !opts.isDraining?.() && opts.isReady?.() !== false ? "SERVING" : "NOT_SERVING" };
    }),
  });

  const address = `${opts.host.includes(":") ? `[${opts.host}]` : opts.host}:${opts.port}`;
  // A gRPC port that cannot serve stops the start: clients configured for it must not find silence.
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(new Error(`MODELD_GRPC_PORT: cannot serve gRPC on ${address}: ${err.message}`)) : resolve(p),
    ),
  );
  return {
    port,
    stop: (timeoutMs) =>
      new Promise<void>((resolve) => {
        // Clients hold streams open; each ends once the requests it carries are answered.
        streams.closeAll();
        const timer = setTimeout(() => (server.forceShutdown(), resolve()), timeoutMs);
        server.tryShutdown(() => (clearTimeout(timer), resolve()));
      }),
  };
}
