import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Service } from "../../src/server";
import { OFF_THREAD_JSON_BYTES } from "../../src/http/infer-body";
import { floatToHalf, halfToFloat } from "../../src/runtime/tensors";
import { affineModel, buildModel, identityModel, zipMapClassifierModel, type ElemType } from "../fixtures/onnx-builder";
import { bytesOf, rawRun } from "../fixtures/raw-ort";
import { cleanup, client, nestedJsonArray, startTestService, testEnv, token, writeModel, type Client, type TestEnv } from "../helpers";

const VAD = join(import.meta.dir, "../../node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx");

let t: TestEnv;
let svc: Service;
let api: Client;
let infer: string;

const TYPES: [ElemType, string, unknown[]][] = [
  ["float32", "FP32", [1.5, -2.25, 3e-8, 1e30, -0, 7]],
  ["float64", "FP64", [Math.PI, -1e300, 5e-324, 0, 1, 2]],
  ["int32", "INT32", [2147483647, -2147483648, 0, 1, -1, 42]],
  ["int64", "INT64", [9007199254740991, -9007199254740991, 0, 1, -1, 42]],
  ["uint8", "UINT8", [0, 255, 1, 2, 3, 128]],
  ["bool", "BOOL", [true, false, true, true, false, false]],
  ["float16", "FP16", [1, -2, 0.5, 65504, 0.0001, -0.333251953125]],
  ["string", "BYTES", ["héllo", "", "wörld", "a b", "🙂", "x"]],
];

async function load(id: string) {
  const { body } = await api.json("POST", `/api/v1/models/${id}/load?activate=false`);
  const done = await api.waitJob(body.id);
  if (done.state !== "completed") throw new Error(`load ${id}: ${JSON.stringify(done.error)}`);
}

beforeAll(async () => {
  t = testEnv({ MODELD_MAX_TENSOR_ELEMENTS: "100000" });
  for (const [type] of TYPES) writeModel(t.modelDir, `id-${type}.onnx`, identityModel(type));
  writeModel(t.modelDir, "id-uint64.onnx", identityModel("uint64"));
  writeModel(t.modelDir, "affine.onnx", affineModel());
  writeModel(t.modelDir, "fixed.onnx", identityModel("float32", [2, 3]));
  writeModel(t.modelDir, "vad.onnx", await Bun.file(VAD).bytes());
  writeModel(t.modelDir, "twin.onnx", buildModel({
    inputs: [{ name: "in", type: "float32", shape: ["batch", 3] }],
    outputs: ["a", "b"].map((name) => ({ name, type: "float32" as const, shape: ["batch", 3] })),
    nodes: ["a", "b"].map((name) => ({ op: "Identity", inputs: ["in"], outputs: [name] })),
  }));
  svc = await startTestService(t);
  api = await client(svc);
  infer = await token({ role: "infer" });
  await Promise.all([...TYPES.map(([type]) => load(`id-${type}`)), load("id-uint64"), load("affine"), load("fixed"), load("vad"), load("twin")]);
});
afterAll(async () => {
  await svc.close();
  cleanup(t);
});

const inferBody = (name: string, datatype: string, shape: number[], data: unknown[], extra: object = {}) => ({
  inputs: [{ name, datatype, shape, data }],
  ...extra,
});

describe("Open Inference Protocol metadata and health", () => {
  test("server metadata, liveness and readiness", async () => {
    expect((await api.json("GET", "/v2", { token: infer })).body).toEqual({
      name: "modeld",
      version: expect.any(String),
      extensions: ["binary_tensor_data", "model_repository", "model_configuration", "statistics"],
    });
    expect((await api.json("GET", "/v2/health/live", { token: null })).body).toEqual({ live: true });
    expect((await api.json("GET", "/v2/health/ready", { token: null })).body).toEqual({ ready: true });
  });

  test("model metadata uses protocol datatypes and -1 for dynamic dims", async () => {
    const { status, body } = await api.json("GET", "/v2/models/vad", { token: infer });
    expect(status).toBe(200);
    expect(body).toEqual({
      name: "vad",
      versions: ["1"],
      platform: "onnxruntime_onnx",
      inputs: [
        { name: "input", datatype: "FP32", shape: [-1, -1] },
        { name: "state", datatype: "FP32", shape: [2, -1, 128] },
        { name: "sr", datatype: "INT64", shape: [] },
      ],
      outputs: [
        { name: "output", datatype: "FP32", shape: [-1, 1] },
        { name: "stateN", datatype: "FP32", shape: [-1, -1, -1] },
      ],
    });
    expect((await api.json("GET", "/v2/models/vad/versions/1", { token: infer })).body).toEqual(body);
    expect((await api.json("GET", "/v2/models/vad/versions/7", { token: infer })).status).toBe(404);
    const fp16 = (await api.json("GET", "/v2/models/id-float16", { token: infer })).body;
    expect(fp16.inputs).toEqual([{ name: "in", datatype: "FP16", shape: [-1, 3] }]);
    // The registry shows the same tensors.
    const model = (await api.json("GET", "/api/v1/models/vad")).body;
    expect(model.inputs.map((i: { name: string }) => i.name)).toEqual(["input", "state", "sr"]);
  });

  test("model readiness: 200 when loaded, 400 when not, 404 when unknown", async () => {
    expect((await api.json("GET", "/v2/models/affine/ready", { token: infer })).body).toEqual({ name: "affine", ready: true });
    expect((await api.json("GET", "/v2/models/affine/versions/1/ready", { token: infer })).status).toBe(200);
    writeModel(t.modelDir, "cold.onnx", affineModel());
    await api.json("POST", "/api/v1/models", { body: { id: "cold", path: "cold.onnx" } });
    const cold = await api.json("GET", "/v2/models/cold/ready", { token: infer });
    expect(cold.status).toBe(400);
    expect(cold.body).toEqual({ error: expect.stringContaining("not ready") });
    expect((await api.json("GET", "/v2/models/nope/ready", { token: infer })).status).toBe(404);
  });
});

describe("inference matches raw onnxruntime-node", () => {
  test.each(TYPES)("%s round-trips through JSON, values identical to raw", async (type, datatype, values) => {
    const shape = [2, 3];
    const { status, body } = await api.json("POST", `/v2/models/id-${type}/infer`, {
      token: infer,
      body: { id: "r1", inputs: [{ name: "in", datatype, shape, data: [values.slice(0, 3), values.slice(3)] }] },
    });
    expect(status).toBe(200);
    expect(body).toMatchObject({ model_name: `id-${type}`, model_version: "1", id: "r1" });
    const out = body.outputs[0];
    expect(out).toMatchObject({ name: "out", datatype, shape });
    const raw = (await rawRun(join(t.modelDir, `id-${type}.onnx`), { in: rawFeed(type, values, shape) })).out!;
    // Compared as JSON can carry them (JSON has no -0); the binary test compares bytes.
    expect(out.data).toEqual(JSON.parse(JSON.stringify(jsonOf(type, raw.data as ArrayLike<unknown>))));
  });

  test.each(TYPES)("%s through the binary extension is byte-identical to raw", async (type, datatype, values) => {
    const shape = [2, 3];
    const feed = rawFeed(type, values, shape);
    const inputBytes = type === "string" ? bytesElements(values as string[]) : new Uint8Array((feed.data as Uint8Array).buffer);
    const res = await binaryInfer(`/v2/models/id-${type}/infer`, {
      inputs: [{ name: "in", datatype, shape, parameters: { binary_data_size: inputBytes.byteLength } }],
      parameters: { binary_data_output: true },
    }, [inputBytes]);
    expect(res.header.outputs[0]).toMatchObject({ name: "out", datatype, shape });
    const raw = (await rawRun(join(t.modelDir, `id-${type}.onnx`), { in: feed })).out!;
    const expected = type === "string" ? bytesElements(raw.data as string[]) : bytesOf(raw);
    expect(res.header.outputs[0].parameters.binary_data_size).toBe(expected.byteLength);
    expect(Buffer.from(res.binary).equals(Buffer.from(expected))).toBe(true);
  });

  test.each([["UINT64", "uint64", 2n ** 64n - 30_000n], ["INT64", "int64", -(2n ** 60n) - 3n]] as const)(
    "%s past 2^53 comes back in JSON with its exact digits, written here or in the codec's thread",
    async (datatype, type, first) => {
      for (const rows of [1, 8000]) {
        const values = Array.from({ length: rows * 3 }, (_, i) => first + BigInt(i));
        const bytes = new Uint8Array((type === "int64" ? new BigInt64Array(values) : new BigUint64Array(values)).buffer);
        const header = new TextEncoder().encode(JSON.stringify({ inputs: [{ name: "in", datatype, shape: [rows, 3], parameters: { binary_data_size: bytes.byteLength } }] }));
        const res = await svc.app.request(`/v2/models/id-${type}/infer`, {
          method: "POST",
          headers: { authorization: `Bearer ${infer}`, "inference-header-content-length": String(header.length) },
          body: Buffer.concat([header, bytes]),
        });
        expect(res.status).toBe(200);
        expect(res.headers.get("content-type")).toStartWith("application/json");
        // JSON.parse would round the digits this test is about, so the text is read as text.
        const text = await res.text();
        expect(text).toContain(`"data":[${values.join(",")}]`);
        expect(JSON.parse(text).outputs[0]).toMatchObject({ name: "out", datatype, shape: [rows, 3] });
      }
    },
  );

  test("the Silero VAD model (a real published model) gives exactly raw's outputs", async () => {
    const input = Float32Array.from({ length: 512 }, (_, i) => Math.sin(i / 7) * 0.3);
    const state = new Float32Array(2 * 128);
    const body = {
      inputs: [
        { name: "input", datatype: "FP32", shape: [1, 512], data: Array.from(input) },
        { name: "state", datatype: "FP32", shape: [2, 1, 128], data: Array.from(state) },
        { name: "sr", datatype: "INT64", shape: [], data: [16000] },
      ],
      outputs: [{ name: "output" }, { name: "stateN", parameters: { binary_data: true } }],
    };
    const header = JSON.stringify(body);
    const res = await api.call("POST", "/v2/models/vad/infer", { token: infer, body: header });
    expect(res.status).toBe(200);
    const hlen = Number(res.headers.get("inference-header-content-length"));
    const buf = new Uint8Array(await res.arrayBuffer());
    const json = JSON.parse(new TextDecoder().decode(buf.subarray(0, hlen)));
    const raw = await rawRun(VAD, {
      input: { type: "float32", data: input, dims: [1, 512] },
      state: { type: "float32", data: state, dims: [2, 1, 128] },
      sr: { type: "int64", data: BigInt64Array.from([16000n]), dims: [] },
    });
    expect(json.outputs[0]).toMatchObject({ name: "output", datatype: "FP32", shape: [1, 1] });
    expect(json.outputs[0].data).toEqual(Array.from(raw.output!.data as Float32Array));
    expect(json.outputs[1]).toMatchObject({ name: "stateN", shape: [2, 1, 128], parameters: { binary_data_size: 1024 } });
    expect(Buffer.from(buf.subarray(hlen)).equals(Buffer.from(bytesOf(raw.stateN!)))).toBe(true);
  });

  test("dynamic batch: any batch size, flat or nested data", async () => {
    for (const batch of [1, 5]) {
      const flat = Array.from({ length: batch * 4 }, (_, i) => i);
      const { body } = await api.json("POST", "/v2/models/affine/infer", { token: infer, body: inferBody("x", "FP32", [batch, 4], flat) });
      expect(body.outputs[0]).toEqual({ name: "y", datatype: "FP32", shape: [batch, 4], data: flat.map((v) => v * 2 + 1) });
    }
  });

  test("many concurrent requests to a session that does not batch each get their own answer", async () => {
    // Far more than one message's worth of runs and results arrive in the same turn.
    const answers = await Promise.all(
      Array.from({ length: 100 }, async (_, k) => {
        const x = [k, k + 0.5, -k, k * 3];
        const { status, body } = await api.json("POST", "/v2/models/affine/infer", { token: infer, body: inferBody("x", "FP32", [1, 4], x, { id: `r${k}` }) });
        return status === 200 && body.id === `r${k}` && JSON.stringify(body.outputs[0].data) === JSON.stringify(x.map((v) => v * 2 + 1));
      }),
    );
    expect(answers.filter((ok) => !ok)).toEqual([]);
  });

  test("/api/v1 predict runs the active or a named model", async () => {
    const named = await api.json("POST", "/api/v1/models/affine/predict", { token: infer, body: inferBody("x", "FP32", [1, 4], [1, 2, 3, 4]) });
    expect(named.body.outputs[0].data).toEqual([3, 5, 7, 9]);
    const none = await api.json("POST", "/api/v1/predict", { token: infer, body: inferBody("x", "FP32", [1, 4], [1, 2, 3, 4]) });
    expect(none.status).toBe(409);
    expect(none.body.error.code).toBe("NO_ACTIVE_MODEL");
    await load("affine"); // activate=false above; make it active now
    await api.waitJob((await api.json("POST", "/api/v1/models/affine/load")).body.id);
    const active = await api.json("POST", "/api/v1/predict", { token: infer, body: inferBody("x", "FP32", [1, 4], [0, 0, 0, 0]) });
    expect(active.body.outputs[0].data).toEqual([1, 1, 1, 1]);
  });
});

describe("input validation before ONNX Runtime", () => {
  const cases: [string, unknown, RegExp][] = [
    ["unknown input", inferBody("nope", "FP32", [1, 4], [1, 2, 3, 4]), /unknown input nope/],
    ["missing input", { inputs: [{ name: "input", datatype: "FP32", shape: [1, 512], data: new Array(512).fill(0) }] }, /missing input state, sr/],
    ["wrong datatype", inferBody("x", "FP64", [1, 4], [1, 2, 3, 4]), /datatype FP64 does not match the model's FP32/],
    ["unknown datatype", inferBody("x", "FP99", [1, 4], [1, 2, 3, 4]), /datatype/],
    ["wrong rank", inferBody("x", "FP32", [4], [1, 2, 3, 4]), /rank 1/],
    ["wrong fixed dim", inferBody("x", "FP32", [1, 3], [1, 2, 3]), /dimension 1 is 3, the model expects 4/],
    ["too little data", inferBody("x", "FP32", [2, 4], [1, 2, 3, 4]), /needs 8 elements, data has 4/],
    ["too much data", inferBody("x", "FP32", [1, 4], [1, 2, 3, 4, 5]), /needs 4 elements, data has more/],
    ["strings for FP32", inferBody("x", "FP32", [1, 4], ["a", "b", "c", "d"]), /must be numbers/],
    ["overflowing shape", inferBody("x", "FP32", [9007199254740991, 4], []), /more than the allowed/],
    ["over the element limit", inferBody("x", "FP32", [50000, 4], []), /more than the allowed 100000 elements/],
    ["negative dim", inferBody("x", "FP32", [-1, 4], []), /shape/],
    ["no inputs", { inputs: [] }, /inputs/],
    ["unknown output", { ...inferBody("x", "FP32", [1, 4], [1, 2, 3, 4]), outputs: [{ name: "zz" }] }, /unknown output zz/],
    ["an input given twice", { inputs: [...inferBody("x", "FP32", [1, 4], [1, 2, 3, 4]).inputs, ...inferBody("x", "FP32", [1, 4], [5, 6, 7, 8]).inputs] }, /input x is given twice/],
    ["an output asked for twice", { ...inferBody("x", "FP32", [1, 4], [1, 2, 3, 4]), outputs: [{ name: "y" }, { name: "y", parameters: { binary_data: true } }] }, /output y is asked for twice/],
  ];
  test.each(cases)("%s: 400 with a clear message", async (_name, body, message) => {
    const model = (body as { inputs: { name: string }[] }).inputs[0]?.name === "input" ? "vad" : "affine";
    const { status, body: err } = await api.json("POST", `/v2/models/${model}/infer`, { token: infer, body });
    expect(status).toBe(400);
    expect(Object.keys(err)).toEqual(["error"]);
    expect(err.error).toMatch(message);
  });

  test("integer range, BOOL values and malformed JSON", async () => {
    const int8 = await api.json("POST", "/v2/models/id-uint8/infer", { token: infer, body: inferBody("in", "UINT8", [1, 3], [1, 256, 3]) });
    expect(int8.status).toBe(400);
    expect(int8.body.error).toContain("256 is not a valid UINT8");
    // 2^60 + 1 reaches the server already rounded by JSON.parse: refused, and told where exact values go.
    const wide = await api.json("POST", "/v2/models/id-int64/infer", { token: infer, body: `{"inputs":[{"name":"in","datatype":"INT64","shape":[1,3],"data":[1,1152921504606846977,3]}]}` });
    expect(wide.status).toBe(400);
    expect(wide.body.error).toContain("send larger ones as raw bytes (binary_data_size over HTTP");
    const bool = await api.json("POST", "/v2/models/id-bool/infer", { token: infer, body: inferBody("in", "BOOL", [1, 3], [1, 0, 1]) });
    expect(bool.body.error).toContain("true or false");
    const bad = await api.json("POST", "/v2/models/affine/infer", { token: infer, body: "{oops" });
    expect(bad.status).toBe(400);
    expect(bad.body).toEqual({ error: "request body is not valid JSON" });
  });

  test("binary extension: sizes that do not add up are 400", async () => {
    const bytes = new Uint8Array(12);
    const short = await binaryInfer("/v2/models/affine/infer", { inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], parameters: { binary_data_size: 12 } }] }, [bytes], 400);
    expect(short.error).toContain("needs 16");
    const over = await binaryInfer("/v2/models/affine/infer", { inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], parameters: { binary_data_size: 99 } }] }, [bytes], 400);
    expect(over.error).toContain("does not fit");
    const trailing = await binaryInfer("/v2/models/affine/infer", { inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }] }, [bytes], 400);
    expect(trailing.error).toContain("belong to no input");
  });

  test("a model that is not loaded: 400 on /v2, 409 on /api/v1; unknown: 404", async () => {
    const v2 = await api.json("POST", "/v2/models/cold/infer", { token: infer, body: inferBody("x", "FP32", [1, 4], [1, 2, 3, 4]) });
    expect(v2.status).toBe(400);
    expect(v2.body.error).toContain("not loaded");
    const v1 = await api.json("POST", "/api/v1/models/cold/predict", { token: infer, body: inferBody("x", "FP32", [1, 4], [1, 2, 3, 4]) });
    expect(v1.status).toBe(409);
    expect(v1.body.error.code).toBe("MODEL_NOT_LOADED");
    expect((await api.json("POST", "/v2/models/ghost/infer", { token: infer, body: inferBody("x", "FP32", [1, 4], [1]) })).status).toBe(404);
  });
});

describe("large JSON bodies and responses, written off the HTTP thread", () => {
  const ROWS = 8000; // 24,000 elements: every type's body is above OFF_THREAD_JSON_BYTES
  const big = (values: unknown[]) => Array.from({ length: ROWS }, (_, r) => [0, 1, 2].map((c) => values[(r * 3 + c) % values.length]));

  /** Counts the bodies the codec's thread parses and the tensors it writes while `f` runs. */
  async function codecCalls(f: () => Promise<unknown>): Promise<{ decoded: number; encoded: number }> {
    const codec = svc.deps.jsonCodec;
    const { decode, encode } = codec;
    const n = { decoded: 0, encoded: 0 };
    codec.decode = (bytes) => (n.decoded++, decode.call(codec, bytes));
    codec.encode = (pieces) => ((n.encoded += pieces.filter((p) => typeof p !== "string").length), encode.call(codec, pieces));
    try {
      await f();
    } finally {
      Object.assign(codec, { decode, encode });
    }
    return n;
  }

  test.each(TYPES)("%s: the answer equals the values sent, and the binary extension's answer", async (type, datatype, values) => {
    const rows = big(values);
    const body = JSON.stringify(inferBody("in", datatype, [ROWS, 3], rows));
    expect(body.length).toBeGreaterThan(OFF_THREAD_JSON_BYTES);
    let json: any;
    // BYTES outputs are strings, written where they are; every other type's 24,000 values go to the thread.
    const calls = await codecCalls(async () => (json = await api.json("POST", `/v2/models/id-${type}/infer`, { token: infer, body })));
    expect(calls).toEqual({ decoded: 1, encoded: type === "string" ? 0 : 1 });
    expect(json.status).toBe(200);
    const flat = rows.flat();
    const feed = rawFeed(type, flat, [ROWS, 3]);
    expect(json.body.outputs[0].data).toEqual(JSON.parse(JSON.stringify(type === "string" ? flat : jsonOf(type, feed.data as ArrayLike<unknown>))));
    const bytes = type === "string" ? bytesElements(flat as string[]) : new Uint8Array((feed.data as Uint8Array).buffer);
    const header = new TextEncoder().encode(JSON.stringify({ inputs: [{ name: "in", datatype, shape: [ROWS, 3], parameters: { binary_data_size: bytes.byteLength } }] }));
    const viaBinary = await svc.app.request(`/v2/models/id-${type}/infer`, {
      method: "POST",
      headers: { authorization: `Bearer ${infer}`, "content-type": "application/octet-stream", "inference-header-content-length": String(header.length) },
      body: Buffer.concat([header, bytes]),
    });
    expect(json.body).toEqual(await viaBinary.json());
  });

  test("a large JSON output beside a binary one: the header carries both, in the order asked", async () => {
    const rows = big([1.5, -2, 3]);
    const res = await svc.app.request("/v2/models/twin/infer", {
      method: "POST",
      headers: { authorization: `Bearer ${infer}`, "content-type": "application/json" },
      body: JSON.stringify({
        id: "mixed",
        inputs: [{ name: "in", datatype: "FP32", shape: [ROWS, 3], data: rows }],
        outputs: [{ name: "b" }, { name: "a", parameters: { binary_data: false } }],
        parameters: { binary_data_output: true },
      }),
    });
    expect(res.status).toBe(200);
    const buf = new Uint8Array(await res.arrayBuffer());
    const hlen = Number(res.headers.get("inference-header-content-length"));
    const header = JSON.parse(new TextDecoder().decode(buf.subarray(0, hlen)));
    expect(header).toMatchObject({ id: "mixed", model_name: "twin", outputs: [{ name: "b", parameters: { binary_data_size: ROWS * 12 } }, { name: "a", shape: [ROWS, 3] }] });
    expect(header.outputs[1].data).toEqual(rows.flat());
    expect(Array.from(new Float32Array(buf.slice(hlen).buffer))).toEqual(rows.flat() as number[]);
  });

  test("small bodies and responses stay where they arrive; a body without a Content-Length is measured once read", async () => {
    const small = await codecCalls(() => api.json("POST", "/v2/models/affine/infer", { token: infer, body: inferBody("x", "FP32", [1, 4], [1, 2, 3, 4]) }));
    expect(small).toEqual({ decoded: 0, encoded: 0 });
    const rows = big([0.25, -1.5, 3]);
    const chunked = new ReadableStream({
      start(ctl) {
        const bytes = new TextEncoder().encode(JSON.stringify(inferBody("in", "FP32", [ROWS, 3], rows)));
        for (let i = 0; i < bytes.length; i += 16384) ctl.enqueue(bytes.subarray(i, i + 16384));
        ctl.close();
      },
    });
    let res: Response | undefined;
    const calls = await codecCalls(async () => {
      res = await svc.app.request("/v2/models/id-float32/infer", { method: "POST", headers: { authorization: `Bearer ${infer}`, "content-type": "application/json" }, body: chunked, duplex: "half" } as RequestInit);
    });
    expect(calls.decoded).toBe(1);
    expect(((await res!.json()) as any).outputs[0].data.slice(0, 6)).toEqual([0.25, -1.5, 3, 0.25, -1.5, 3]);
  });

  test("bad large bodies get the same 400s as small ones", async () => {
    const pad = "x".repeat(OFF_THREAD_JSON_BYTES);
    const malformed = await api.json("POST", "/v2/models/affine/infer", { token: infer, body: `{"id":"${pad}"` });
    expect(malformed).toMatchObject({ status: 400, body: { error: "request body is not valid JSON" } });
    // Nested too deeply for the codec's thread to hand back: refused alone, while a good large request beside it is answered.
    const [nested, beside] = await Promise.all([
      api.json("POST", "/v2/models/id-float32/infer", { token: infer, body: `{"inputs":[{"name":"in","datatype":"FP32","shape":[1,3],"data":${nestedJsonArray(50_000)}}]}` }),
      api.json("POST", "/v2/models/id-float32/infer", { token: infer, body: inferBody("in", "FP32", [ROWS, 3], big([1.5])) }),
    ]);
    expect(nested).toMatchObject({ status: 400, body: { error: "request body is nested too deeply" } });
    expect(beside.status).toBe(200);
    const cases: [string, unknown[], number[], RegExp][] = [
      ["id-uint8", [...new Array(ROWS * 3 - 1).fill(1), 256], [ROWS, 3], /256 is not a valid UINT8/],
      ["id-float32", [...new Array(ROWS * 3 - 1).fill(1.5), "a"], [ROWS, 3], /must be numbers/],
      ["id-float32", new Array(ROWS * 3 - 3).fill(1.5), [ROWS, 3], /needs 24000 elements, data has 23997/],
      ["id-float32", new Array(ROWS * 3).fill(1.5), [ROWS, 4], /dimension 1 is 4, the model expects 3/],
      ["affine", new Array(ROWS * 4).fill(1.5), [ROWS, 4], /unknown input in/],
    ];
    for (const [model, data, shape, message] of cases) {
      const datatype = model === "id-uint8" ? "UINT8" : "FP32";
      const { status, body } = await api.json("POST", `/v2/models/${model}/infer`, { token: infer, body: inferBody("in", datatype, shape, data) });
      expect({ model, status, error: body.error }).toMatchObject({ status: 400, error: expect.stringMatching(message) });
    }
  });
});

describe("models with types ONNX Runtime's Node binding cannot pass (sklearn-onnx's ZipMap, bfloat16)", () => {
  test("the tensor outputs serve, warmup included; the others are left out of the metadata and refused by name", async () => {
    writeModel(t.modelDir, "clf.onnx", zipMapClassifierModel());
    await api.json("POST", "/api/v1/models/rescan");
    expect((await api.json("PATCH", "/api/v1/models/clf", { body: { warmup: { runs: 2 } } })).status).toBe(200);
    await load("clf");
    const meta = await api.json("GET", "/v2/models/clf", { token: infer });
    expect(meta.body.outputs).toEqual([{ name: "label", datatype: "INT64", shape: [-1] }]);
    expect((await api.json("GET", "/v2/models/clf/config", { token: infer })).body.output.map((o: any) => o.name)).toEqual(["label"]);
    const body = inferBody("x", "FP32", [2, 3], [1, 2, 3, 3, 2, 1]);
    const res = await api.json("POST", "/v2/models/clf/infer", { token: infer, body });
    expect(res.status).toBe(200);
    expect(res.body.outputs).toEqual([{ name: "label", datatype: "INT64", shape: [2], data: [2, 0] }]);
    const asked = await api.json("POST", "/v2/models/clf/infer", { token: infer, body: { ...body, outputs: [{ name: "probabilities" }] } });
    expect(asked.status).toBe(400);
    expect(asked.body.error).toBe("output probabilities is a sequence or a map, which modeld cannot return (ONNX Runtime's Node binding returns tensors only); ask for label");
  });

  test("a model with no tensor output at all fails its load, saying how to export it", async () => {
    writeModel(t.modelDir, "zipmap-only.onnx", zipMapClassifierModel(true));
    await api.json("POST", "/api/v1/models/rescan");
    const { body } = await api.json("POST", "/api/v1/models/zipmap-only/load?activate=false");
    const done = await api.waitJob(body.id);
    expect(done).toMatchObject({ state: "failed", error: { code: "LOAD_FAILED", message: expect.stringContaining("sklearn-onnx: zipmap=False") } });
    expect((await api.json("GET", "/api/v1/models/zipmap-only")).body.state).toBe("failed");
  });

  test("a model with bfloat16 inputs fails its load naming the type, not its number", async () => {
    writeModel(t.modelDir, "bf16.onnx", identityModel("bfloat16"));
    await api.json("POST", "/api/v1/models/rescan");
    const { body } = await api.json("POST", "/api/v1/models/bf16/load?activate=false");
    const done = await api.waitJob(body.id);
    expect(done).toMatchObject({ state: "failed", error: { code: "LOAD_FAILED", message: expect.stringContaining("is bfloat16, which ONNX Runtime's Node binding cannot pass") } });
  });
});

describe("inference auth", () => {
  test("infer needs a token with infer or admin; other roles get 403", async () => {
    const body = inferBody("x", "FP32", [1, 4], [1, 2, 3, 4]);
    expect((await api.json("POST", "/v2/models/affine/infer", { token: null, body })).status).toBe(401);
    expect((await api.json("POST", "/v2/models/affine/infer", { token: await token({ role: "viewer" }), body })).status).toBe(403);
    expect((await api.json("POST", "/v2/models/affine/infer", { body })).status).toBe(200); // admin
    expect((await api.json("GET", "/v2/models/affine", { token: null })).status).toBe(401);
    // infer may not load or unload
    expect((await api.json("POST", "/v2/repository/models/affine/unload", { token: infer })).status).toBe(403);
  });
});

// ---- helpers ------------------------------------------------------------------

function rawFeed(type: ElemType, values: unknown[], dims: number[]) {
  switch (type) {
    case "float32": return { type, data: Float32Array.from(values as number[]), dims };
    case "float64": return { type, data: Float64Array.from(values as number[]), dims };
    case "int32": return { type, data: Int32Array.from(values as number[]), dims };
    case "int64": return { type, data: BigInt64Array.from((values as number[]).map(BigInt)), dims };
    case "uint8": return { type, data: Uint8Array.from(values as number[]), dims };
    case "bool": return { type, data: Uint8Array.from((values as boolean[]).map(Number)), dims };
    case "float16": return { type, data: Uint16Array.from((values as number[]).map(floatToHalf)), dims };
    case "string": return { type, data: values as string[], dims };
    default: throw new Error(type);
  }
}

function jsonOf(type: ElemType, data: ArrayLike<unknown>): unknown[] {
  const arr = Array.from(data as ArrayLike<number>);
  if (type === "bool") return arr.map((v) => v !== 0);
  if (type === "float16") return arr.map(halfToFloat);
  if (type === "int64") return arr.map(Number);
  return arr;
}

function bytesElements(values: string[]): Uint8Array {
  const parts = values.map((s) => new TextEncoder().encode(s));
  const out = new Uint8Array(parts.reduce((n, p) => n + 4 + p.length, 0));
  let off = 0;
  for (const p of parts) {
    new DataView(out.buffer).setUint32(off, p.length, true);
    out.set(p, off + 4);
    off += 4 + p.length;
  }
  return out;
}

async function binaryInfer(path: string, header: object, parts: Uint8Array[], expectStatus = 200): Promise<any> {
  const h = new TextEncoder().encode(JSON.stringify(header));
  const body = Buffer.concat([h, ...parts]);
  const res = await svc.app.request(path, {
    method: "POST",
    headers: { authorization: `Bearer ${infer}`, "content-type": "application/octet-stream", "inference-header-content-length": String(h.length) },
    body,
  });
  expect(res.status).toBe(expectStatus);
  if (expectStatus !== 200) return res.json();
  const buf = new Uint8Array(await res.arrayBuffer());
  const hlen = Number(res.headers.get("inference-header-content-length"));
  return { header: JSON.parse(new TextDecoder().decode(buf.subarray(0, hlen))), binary: buf.subarray(hlen) };
}

