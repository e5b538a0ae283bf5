// The gRPC service definition, parsed from the text modeld carries (so the
// compiled binary needs no .proto file on disk), for the server and for tests.
import * as grpc from "@grpc/grpc-js";
import { fromJSON } from "@grpc/proto-loader";
import protobuf from "protobufjs";
import { INFERENCE_PROTO } from "../platform/assets";

/** int64 fields as JS numbers (shapes and counters stay far below 2^53), enums as names, defaults filled in. */
const OPTIONS = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true } as const;

export function inferenceService(): { service: grpc.ServiceDefinition; client: grpc.ServiceClientConstructor } {
  const root = protobuf.parse(INFERENCE_PROTO, { keepCase: true }).root;
  const pkg = grpc.loadPackageDefinition(fromJSON(root.toJSON(), OPTIONS)) as unknown as {
    inference: { GRPCInferenceService: grpc.ServiceClientConstructor };
  };
  const ctor = pkg.inference.GRPCInferenceService;
  return { service: ctor.service, client: ctor };
}
