import { expect, test } from "bun:test";
import * as grpc from "@grpc/grpc-js";
import { VERSION } from "../../src/http/app";
import { startGrpcServer } from "../../src/grpc/server";
import { affineModel } from "../fixtures/onnx-builder";
import { grpcClient } from "../fixtures/grpc-client";
import { token, useService, writeModel } from "../helpers";

const f = useService({ MODELD_PUBLIC_INFERENCE: "true" }, (t) => void writeModel(t.modelDir, "m.onnx", affineModel()));
const body = { inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }] };

test("MODELD_PUBLIC_INFERENCE opens inference, metadata and readiness, never loading or unloading", async () => {
  await f.api.waitJob((await f.api.json("POST", "/api/v1/models/m/load")).body.id);
  const anon = { token: null };
  expect((await f.api.json("POST", "/v2/models/m/infer", { ...anon, body })).body.outputs[0].data).toEqual([3, 5, 7, 9]);
  expect((await f.api.json("POST", "/api/v1/predict", { ...anon, body })).status).toBe(200);
  expect((await f.api.json("GET", "/v2/models/m", anon)).status).toBe(200);
  expect((await f.api.json("GET", "/v2/models/m/ready", anon)).status).toBe(200);
  // A bad token is still refused rather than ignored.
  expect((await f.api.json("POST", "/v2/models/m/infer", { token: "bad.token.x", body })).status).toBe(401);
  // Lifecycle stays admin-only.
  expect((await f.api.json("POST", "/api/v1/models/m/unload", anon)).status).toBe(401);
  expect((await f.api.json("POST", "/v2/repository/models/m/unload", anon)).status).toBe(401);
  expect((await f.api.json("POST", "/v2/repository/models/m/unload", { token: await token({ role: "infer" }) })).status).toBe(403);
  expect((await f.api.json("GET", "/api/v1/models", anon)).status).toBe(401);
});

test("HTTP and gRPC let the same callers in when inference is public", async () => {
  await f.api.waitJob((await f.api.json("POST", "/api/v1/models/m/load")).body.id);
  const grpcServer = await startGrpcServer(f.svc.deps, f.svc.verify, { host: "127.0.0.1", port: 0, version: VERSION });
  const client = grpcClient(`127.0.0.1:${grpcServer.port}`, null);
  try {
    const grpcInfer = { model_name: "m", inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }] };
    const callers: [string, string | null, number, grpc.status][] = [
      ["no token", null, 200, grpc.status.OK],
      // A valid token without the infer role can do no more than an anonymous caller, so it is not refused.
      ["a token without the infer role", await token({ role: "metrics" }), 200, grpc.status.OK],
      ["a bad token", "bad.token.x", 401, grpc.status.UNAUTHENTICATED],
      ["an expired token", await token({ role: "infer" }, { exp: Math.floor(Date.now() / 1000) - 3600 }), 401, grpc.status.UNAUTHENTICATED],
    ];
    for (const [who, tok, http, rpc] of callers) {
      expect([who, (await f.api.json("POST", "/v2/models/m/infer", { token: tok, body })).status]).toEqual([who, http]);
      expect([who, (await f.api.json("GET", "/v2/models/m", { token: tok })).status]).toEqual([who, http]);
      expect([who, await client.status("ModelInfer", grpcInfer, tok)]).toEqual([who, rpc]);
      expect([who, await client.status("ModelMetadata", { name: "m" }, tok)]).toEqual([who, rpc]);
    }
    // The repository stays admin-only on both.
    const infer = await token({ role: "infer" });
    expect(await client.status("RepositoryIndex", {}, infer)).toBe(grpc.status.PERMISSION_DENIED);
    expect((await f.api.json("POST", "/v2/repository/index", { token: infer, body: {} })).status).toBe(403);
  } finally {
    client.close();
    await grpcServer.stop(1000);
  }
});
