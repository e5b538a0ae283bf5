import { expect, test } from "bun:test";
import { JsonDecoder } from "../../src/runtime/json-decoder";

const bytesOf = (v: unknown) => new TextEncoder().encode(JSON.stringify(v)).buffer as ArrayBuffer;

test("packs each input whose data is complete and valid, and leaves the others for the request's own checks", async () => {
  const decoder = new JsonDecoder();
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
    const decoded = await decoder.decode(bytesOf(body));
    expect(decoded).toBeDefined();
    const { value, packed } = decoded!;
    expect(Array.from(new Float32Array(packed[0]!))).toEqual([1.5, 2, 3, 4]);
    expect(Array.from(new BigInt64Array(packed[4]!))).toEqual([-1n, 2n ** 40n]);
    expect(packed.slice(1, 4)).toEqual([undefined, undefined, undefined]);
    const inputs = (value as typeof body).inputs;
    expect(inputs.map((i) => "data" in i)).toEqual([false, true, true, true, false]);
    expect(inputs[1]!.data).toEqual([1, 300]);
    expect((value as typeof body).id).toBe("r");
  } finally {
    decoder.close();
  }
});

test("a body that is not JSON decodes to undefined; a closed decoder refuses", async () => {
  const decoder = new JsonDecoder();
  expect(await decoder.decode(new TextEncoder().encode("{nope").buffer as ArrayBuffer)).toBeUndefined();
  expect(await decoder.decode(bytesOf([1, 2]))).toEqual({ value: [1, 2], packed: [] });
  decoder.close();
  await expect(decoder.decode(bytesOf({}))).rejects.toThrow("closed");
});
