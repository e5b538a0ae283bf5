import { expect, test } from "bun:test";
import { JsonCodec } from "../../src/runtime/json-codec";
import { floatToHalf, jsonDataText } from "../../src/runtime/tensors";
import { nestedJsonArray } from "../helpers";

const bytesOf = (v: unknown) => new TextEncoder().encode(JSON.stringify(v)).buffer as ArrayBuffer;

test("packs each input whose data is complete and valid, and leaves the others for the request's own checks", async () => {
  const codec = new JsonCodec();
  try {
    const body = {
      id: "r",
      inputs: [
        { name: "a", datatype: "FP32", shape: [2, 2], data: [[1.5, 2], [3, 4]] },
        { name: "b", datatype: "INT8", shape: [2], data: [1, 300] },
        { name: "c", datatype: "BYTES", shape: [1], data: ["x"] },
        { name: "d", datatype: "BOOL", shape: [3], data: [true, false] },
        { name: "e", datatype: "INT64", shape: [2], data: [-1, 2 ** 40] },
      ],
    };
    const decoded = await codec.decode(bytesOf(body));
    if ("invalid" in decoded) throw new Error(`refused: ${decoded.invalid}`);
    const { value, packed } = decoded;
    expect(Array.from(new Float32Array(packed[0]!))).toEqual([1.5, 2, 3, 4]);
    expect(Array.from(new BigInt64Array(packed[4]!))).toEqual([-1n, 2n ** 40n]);
    expect(packed.slice(1, 4)).toEqual([undefined, undefined, undefined]);
    const inputs = (value as typeof body).inputs;
    expect(inputs.map((i) => "data" in i)).toEqual([false, true, true, true, false]);
    expect(inputs[1]!.data).toEqual([1, 300]);
    expect((value as typeof body).id).toBe("r");
  } finally {
    codec.close();
  }
});

test("a body that is not JSON, or nested too deeply to hand back, is refused and the thread serves on; a closed codec refuses", async () => {
  const codec = new JsonCodec();
  expect(await codec.decode(new TextEncoder().encode("{nope").buffer as ArrayBuffer)).toEqual({ invalid: "malformed" });
  const nested = `{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":${nestedJsonArray(100_000)}}]}`;
  const [refused, next] = await Promise.all([codec.decode(new TextEncoder().encode(nested).buffer as ArrayBuffer), codec.decode(bytesOf({ a: 1 }))]);
  expect(refused).toEqual({ invalid: "too-deep" });
  expect(next).toEqual({ value: { a: 1 }, packed: [] });
  expect(await codec.decode(bytesOf([1, 2]))).toEqual({ value: [1, 2], packed: [] });
  codec.close();
  await expect(codec.decode(bytesOf({}))).rejects.toThrow("closed");
});

test("writes text pieces with each tensor's values as the JSON the HTTP thread would write, and takes the buffers", async () => {
  const codec = new JsonCodec();
  try {
    const tensors = [
      { name: "f", type: "float32" as const, dims: [2, 2], data: new Float32Array([1.5, NaN, -0, 1e30]).buffer },
      { name: "h", type: "float16" as const, dims: [2], data: new Uint16Array([floatToHalf(0.5), floatToHalf(-2)]).buffer },
      { name: "l", type: "int64" as const, dims: [1], data: new BigInt64Array([-(2n ** 40n)]).buffer },
      { name: "b", type: "bool" as const, dims: [2], data: new Uint8Array([1, 0]).buffer },
    ];
    const expected = tensors.map((t) => jsonDataText(t));
    const text = new TextDecoder().decode(await codec.encode(["{\"f\":", tensors[0]!, ",\"rest\":[", tensors[1]!, ",", tensors[2]!, ",", tensors[3]!, "]}"]));
    expect(text).toBe(`{"f":${expected[0]},"rest":[${expected.slice(1).join(",")}]}`);
    expect(JSON.parse(text)).toEqual({ f: [1.5, null, 0, 1.0000000150474662e30], rest: [[0.5, -2], [-1099511627776], [true, false]] });
    expect(tensors.map((t) => t.data.byteLength)).toEqual([0, 0, 0, 0]);
  } finally {
    codec.close();
  }
});
