// The gRPC floor: grpc-js on modeld's service definition, answering ModelInfer
// by echoing its raw input as output, with no model, no auth, no queue.
import * as grpc from "@grpc/grpc-js";
import { inferenceService } from "../src/grpc/definition";

const { service } = inferenceService();
const server = new grpc.Server();
server.addService(service, {
  ModelInfer: (call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<any>) =>
    cb(null, { model_name: call.request.model_name, model_version: "1", outputs: [{ name: "y", datatype: "FP32", shape: call.request.inputs[0].shape }], raw_output_contents: call.request.raw_input_contents }),
});
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  console.log(JSON.stringify({ msg: "listening", url: `http://127.0.0.1:${port}` }));
});
