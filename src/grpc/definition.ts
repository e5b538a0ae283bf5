// The gRPC service definition, parsed from the text modeld carries (so the
// compiled binary needs no .proto file on disk), for the server and for tests.
import * as grpc from "@grpc/grpc-js";
import { fromJSON } from "@grpc/proto-loader";
import protobuf from "protobufjs";
import { HEALTH_PROTO, INFERENCE_PROTO } from "../platform/assets";

/** int64 fields as JS numbers (shapes and counters stay far below 2^53), enums as names, defaults filled in. */
const OPTIONS = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true } as const;

type Definition = { service: grpc.ServiceDefinition; client: grpc.ServiceClientConstructor };

function serviceIn(proto: string, path: string[]): Definition {
  const root = protobuf.parse(proto, { keepCase: true }).root;
  const pkg = grpc.loadPackageDefinition(fromJSON(root.toJSON(), OPTIONS)) as unknown as Record<string, unknown>;
  const ctor = path.reduce<any>((at, name) => at[name], pkg) as grpc.ServiceClientConstructor;
  return { service: ctor.service, client: ctor };
}

export const inferenceService = (): Definition => serviceIn(INFERENCE_PROTO, ["inference", "GRPCInferenceService"]);

/** grpc.health.v1.Health, for Kubernetes' gRPC probes and grpc_health_probe. */
export const healthService = (): Definition => serviceIn(HEALTH_PROTO, ["grpc", "health", "v1", "Health"]);
