// Triton's system shared memory extension, over real POSIX shared memory
// objects in /dev/shm, as tritonclient's shm utilities create them.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { affineModel, identityModel } from "../fixtures/onnx-builder";
import { client, cleanup, startTestService, testEnv, token, until, useService, writeModel } from "../helpers";

const created: string[] = [];
/** A shared memory object of `size` bytes, as shm_open + ftruncate make it; its key. */
function shmObject(size: number): string {
  const name = `modeld-test-${process.pid}-${Math.random().toString(36).slice(2)}`;
  writeFileSync(join("/dev/shm", name), new Uint8Array(size));
  created.push(join("/dev/shm", name));
  return `/${name}`;
}
const put = (key: string, at: number, bytes: Uint8Array) => {
  const path = join("/dev/shm", key.slice(1));
  const all = readFileSync(path);
  all.set(bytes, at);
  writeFileSync(path, all);
};
const floatsAt = (key: string, at: number, n: number) => [...new Float32Array(readFileSync(join("/dev/shm", key.slice(1))).buffer.slice(at, at + n * 4))];
const f32 = (values: number[]) => new Uint8Array(new Float32Array(values).buffer);

afterAll(() => created.forEach((p) => rmSync(p, { force: true })));

test("shared memory from clients is off unless the operator turns it on, and the server metadata says so", async () => {
  const t = testEnv();
  const service = await startTestService(t);
  try {
    const api = await client(service);
    const key = shmObject(64);
    const refused = await api.json("POST", "/v2/systemsharedmemory/region/in/register", { body: { key, offset: 0, byte_size: 64 } });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toContain("MODELD_ALLOW_CLIENT_SHM");
    expect((await api.json("GET", "/v2")).body.extensions).not.toContain("system_shared_memory");
  } finally {
    await service.close();
    cleanup(t);
  }
});

describe("with MODELD_ALLOW_CLIENT_SHM=true", () => {
  const svc = useService({ MODELD_ALLOW_CLIENT_SHM: "true", MODELD_LOAD_ON_START: "affine,words,wide", MODELD_MAX_TENSOR_ELEMENTS: "1048576" }, (t) => {
    writeModel(t.modelDir, "wide.onnx", identityModel("float32", [1, "n"]));
    writeModel(t.modelDir, "affine.onnx", affineModel(2, 1));
    writeModel(t.modelDir, "words.onnx", identityModel("string", ["batch"]));
  });
  const x = (parameters: Record<string, unknown>) => ({ inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], parameters }] });
  beforeAll(async () => {
    const ready = await until(() => svc.api.call("GET", "/v2/health/ready"), (r) => r.status === 200);
    expect(ready.status).toBe(200);
  });

  test("an input read from a region and an output written to one, as tritonclient's shm example does", async () => {
    const { api } = svc;
    expect((await api.json("GET", "/v2")).body.extensions).toContain("system_shared_memory");
    const input = shmObject(64);
    const output = shmObject(32);
    // The region starts 8 bytes into the object and the tensor 8 bytes into the region.
    put(input, 16, f32([1, 2, 3, 4]));
    expect((await api.json("POST", "/v2/systemsharedmemory/region/in/register", { body: { key: input, offset: 8, byte_size: 48 } })).status).toBe(200);
    expect((await api.json("POST", "/v2/systemsharedmemory/region/out/register", { body: { key: output, byte_size: 32 } })).status).toBe(200);
    const status = await api.json("GET", "/v2/systemsharedmemory/status");
    expect(status.body).toEqual([
      { name: "in", key: input, offset: 8, byte_size: 48 },
      { name: "out", key: output, offset: 0, byte_size: 32 },
    ]);
    expect((await api.json("GET", "/v2/systemsharedmemory/region/out/status")).body).toEqual([{ name: "out", key: output, offset: 0, byte_size: 32 }]);

    const inShm = { shared_memory_region: "in", shared_memory_offset: 8, shared_memory_byte_size: 16 };
    const both = await api.json("POST", "/v2/models/affine/infer", {
      body: { ...x(inShm), outputs: [{ name: "y", parameters: { shared_memory_region: "out", shared_memory_offset: 4, shared_memory_byte_size: 24 } }] },
    });
    expect(both.status).toBe(200);
    expect(both.body.outputs).toEqual([
      { name: "y", datatype: "FP32", shape: [1, 4], parameters: { shared_memory_region: "out", shared_memory_offset: 4, shared_memory_byte_size: 16 } },
    ]);
    expect(floatsAt(output, 4, 4)).toEqual([3, 5, 7, 9]);
    // The client changes the region's contents between requests; the next request reads them anew.
    put(input, 16, f32([0, 0, 1, 1]));
    const json = await api.json("POST", "/v2/models/affine/infer", { body: x(inShm) });
    expect(json.body.outputs[0].data).toEqual([1, 1, 3, 3]);
  });

  test("strings travel in a region in the binary extension's layout", async () => {
    const { api } = svc;
    const key = shmObject(64);
    const words = ["héllo", "", "shm"].map((w) => new TextEncoder().encode(w));
    const layout = new Uint8Array(words.reduce((n, w) => n + 4 + w.byteLength, 0));
    let at = 0;
    for (const w of words) {
      new DataView(layout.buffer).setUint32(at, w.byteLength, true);
      layout.set(w, at + 4);
      at += 4 + w.byteLength;
    }
    put(key, 0, layout);
    expect((await api.json("POST", "/v2/systemsharedmemory/region/words/register", { body: { key, byte_size: 64 } })).status).toBe(200);
    const answer = await api.json("POST", "/v2/models/words/infer", {
      body: { inputs: [{ name: "in", datatype: "BYTES", shape: [3], parameters: { shared_memory_region: "words", shared_memory_byte_size: layout.byteLength } }] },
    });
    expect(answer.body.outputs[0].data).toEqual(["héllo", "", "shm"]);
  });

  test("what cannot be registered or used is a 400 naming why, and nothing is written", async () => {
    const { api } = svc;
    const key = shmObject(16);
    const register = (region: string, body: unknown) => api.json("POST", `/v2/systemsharedmemory/region/${region}/register`, { body });
    const refusals = [
      await register("missing", { key: "/modeld-test-no-such-object", byte_size: 8 }),
      await register("escape", { key: "/../../etc/passwd", byte_size: 8 }),
      await register("nested", { key: "/a/b", byte_size: 8 }),
      await register("long", { key, offset: 8, byte_size: 16 }),
      await register("nokey", { byte_size: 8 }),
    ];
    expect(refusals.map((r) => r.status)).toEqual([400, 400, 400, 400, 400]);
    expect(refusals[0]!.body.error).toContain("ENOENT");
    expect(refusals[3]!.body.error).toContain("past the end");
    // A symlink in /dev/shm is not followed to a file elsewhere.
    const link = `modeld-test-${process.pid}-link`;
    symlinkSync("/etc/hostname", join("/dev/shm", link));
    created.push(join("/dev/shm", link));
    expect((await register("link", { key: `/${link}`, byte_size: 1 })).body.error).toContain("ELOOP");

    expect((await register("small", { key, byte_size: 16 })).status).toBe(200);
    const taken = await register("small", { key, byte_size: 16 });
    expect(taken.body.error).toContain("already registered");
    const stats = async () => (await api.json("GET", "/v2/models/affine/stats")).body.model_stats[0].inference_stats;
    const before = await stats();
    const bad = [
      await api.json("POST", "/v2/models/affine/infer", { body: x({ shared_memory_region: "nope", shared_memory_byte_size: 16 }) }),
      await api.json("POST", "/v2/models/affine/infer", { body: x({ shared_memory_region: "small", shared_memory_offset: 8, shared_memory_byte_size: 16 }) }),
      await api.json("POST", "/v2/models/affine/infer", { body: x({ shared_memory_region: "small" }) }),
      await api.json("POST", "/v2/models/affine/infer", { body: { inputs: [{ ...x({ shared_memory_region: "small", shared_memory_byte_size: 16 }).inputs[0], data: [1, 2, 3, 4] }] } }),
      await api.json("POST", "/v2/models/affine/infer", {
        body: { inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }], outputs: [{ name: "y", parameters: { shared_memory_region: "small", shared_memory_byte_size: 8 } }] },
      }),
    ];
    bad.push(await api.json("POST", "/v2/models/affine/infer", { body: x({ shared_memory_region: "small", shared_memory_byte_size: 8 * 1048576 + 1 }) }));
    expect(bad.map((r) => r.status)).toEqual([400, 400, 400, 400, 400, 400]);
    expect(bad.map((r) => r.body.error)).toEqual([
      expect.stringContaining('no shared memory region "nope"'),
      expect.stringContaining("past the end of region small"),
      expect.stringContaining("shared_memory_byte_size must be given"),
      expect.stringContaining("give one of data, binary_data_size or shared_memory_region"),
      expect.stringContaining("shared_memory_byte_size is 8 bytes, and the output needs 16"),
      // Read into memory before the tensor is checked, so bounded as a body is.
      expect.stringContaining("more than the 8388608 bytes of the largest tensor MODELD_MAX_TENSOR_ELEMENTS allows"),
    ]);
    const after = await stats();
    expect([after.success.count - before.success.count, after.fail.count - before.fail.count]).toEqual([0, 6]);
    // An output larger than the room given is not written in part.
    expect(floatsAt(key, 0, 4)).toEqual([0, 0, 0, 0]);
    expect((await api.json("GET", "/v2/cudasharedmemory/status")).body).toEqual([]);
    expect((await api.json("POST", "/v2/cudasharedmemory/region/gpu/register", { body: { raw_handle: { b64: "" }, device_id: 0, byte_size: 8 } })).status).toBe(400);
  });

  test("only an admin registers, lists or unregisters; an unregistered region is gone for inference", async () => {
    const { api } = svc;
    const reader = await token({ role: "infer" });
    const key = shmObject(16);
    expect((await api.json("POST", "/v2/systemsharedmemory/region/r/register", { body: { key, byte_size: 16 }, token: reader })).status).toBe(403);
    expect((await api.json("GET", "/v2/systemsharedmemory/status", { token: reader })).status).toBe(403);
    expect((await api.json("POST", "/v2/systemsharedmemory/region/r/register", { body: { key, byte_size: 16 } })).status).toBe(200);
    // An inference caller uses what an admin registered.
    put(key, 0, f32([1, 1, 1, 1]));
    const used = await api.json("POST", "/v2/models/affine/infer", { body: x({ shared_memory_region: "r", shared_memory_byte_size: 16 }), token: reader });
    expect(used.body.outputs[0].data).toEqual([3, 3, 3, 3]);
    expect((await api.json("POST", "/v2/systemsharedmemory/region/r/unregister")).status).toBe(200);
    expect((await api.json("GET", "/v2/systemsharedmemory/region/r/status")).status).toBe(400);
    const gone = await api.json("POST", "/v2/models/affine/infer", { body: x({ shared_memory_region: "r", shared_memory_byte_size: 16 }) });
    expect(gone.body.error).toContain('no shared memory region "r"');
    expect((await api.json("POST", "/v2/systemsharedmemory/unregister")).status).toBe(200);
    expect((await api.json("GET", "/v2/systemsharedmemory/status")).body).toEqual([]);
  });
  test("a region unregistered while requests read and write it: each request is answered 200 or 400, none 5xx, and the server serves on", async () => {
    const { api } = svc;
    const n = 1024 * 1024;
    const key = shmObject(n * 8);
    put(key, 0, f32(Array.from({ length: n }, (_, i) => i % 100)));
    expect((await api.json("POST", "/v2/systemsharedmemory/region/race/register", { body: { key, byte_size: n * 8 } })).status).toBe(200);
    const region = (offset: number) => ({ shared_memory_region: "race", shared_memory_offset: offset, shared_memory_byte_size: n * 4 });
    const body = { inputs: [{ name: "in", datatype: "FP32", shape: [1, n], parameters: region(0) }], outputs: [{ name: "out", parameters: region(n * 4) }] };
    const requests = Array.from({ length: 32 }, () => api.json("POST", "/v2/models/wide/infer", { body }));
    // Once one is answered, the others are reading, queued for the model or writing.
    await Promise.race(requests);
    const unregistered = api.json("POST", "/v2/systemsharedmemory/region/race/unregister");
    const answers = await Promise.all(requests);
    expect((await unregistered).status).toBe(200);
    const refused = answers.filter((a) => a.status !== 200);
    expect(refused.every((a) => a.status === 400 && /no shared memory region "race"|region race .* could not be used/.test(a.body.error))).toBe(true);
    expect((await api.json("POST", "/v2/systemsharedmemory/region/race/register", { body: { key, byte_size: n * 8 } })).status).toBe(200);
    expect((await api.json("POST", "/v2/models/wide/infer", { body })).status).toBe(200);
    expect(floatsAt(key, n * 4 + 396, 1)).toEqual([99]);
    expect((await api.json("POST", "/v2/systemsharedmemory/region/race/unregister")).status).toBe(200);
  });
});
