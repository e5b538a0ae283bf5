import { expect, test } from "bun:test";
import { affineModel } from "../fixtures/onnx-builder";
import { token, useService, writeModel } from "../helpers";

const f = useService({ MODELD_PUBLIC_INFERENCE: "true" }, (t) => void writeModel(t.modelDir, "m.onnx", affineModel()));

test("MODELD_PUBLIC_INFERENCE opens inference, metadata and readiness, never loading or unloading", async () => {
  await f.api.waitJob((await f.api.json("POST", "/api/v1/models/m/load")).body.id);
  const body = { inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }] };
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
