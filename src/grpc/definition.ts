// The gRPC service definition, parsed from the text modeld carries (so the
// compiled binary needs no .proto file on disk), for the server and for tests.
import * as grpc from "@grpc/grpc-js";
import { fromJSON } from "@grpc/proto-loader";
import protobuf from "protobufjs";
import { HEALTH_PROTO, INFERENCE_PROTO } from "../platform/assets";

/** Enums as names, defaults filled in. */
const OPTIONS = { keepCase: true, enums: String, defaults: true, oneofs: true } as const;

type Definition = { service: grpc.ServiceDefinition; client: grpc.ServiceClientConstructor };

/**
 * The server reads int64 and uint64 fields as decimal strings, so INT64 and UINT64
 * contents past 2^53 arrive exact (as numbers they arrived rounded); it turns the
 * other such fields it reads into numbers. The client (tests, benches) reads them
 * as numbers, as tritonclient reads them as ints.
 */
function serviceIn(proto: string, path: string[]): Definition {
  const json = protobuf.parse(proto, { keepCase: true }).root.toJSON();
  const ctor = (longs: typeof String | typeof Number) =>
    path.reduce<any>((at, name) => at[name], grpc.loadPackageDefinition(fromJSON(json, { ...OPTIONS, longs }))) as grpc.ServiceClientConstructor;
  // Each side builds only its own: the server never needs the client's constructor.
  return {
    get service() {
      return ctor(String).service;
    },
    get client() {
      return ctor(Number);
    },
  };
}

export const inferenceService = (): Definition => serviceIn(INFERENCE_PROTO, ["inference", "GRPCInferenceService"]);

/** grpc.health.v1.Health, for Kubernetes' gRPC probes and grpc_health_probe. */
export const healthService = (): Definition => serviceIn(HEALTH_PROTO, ["grpc", "health", "v1", "Health"]);
