// The shipped artifact, for real: build the single binary, copy it alone into
// an empty read-only directory, start it with no node_modules in reach, load a
// model, stop it with SIGTERM.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { cleanup, tempDir } from "./helpers";
import { startBinary, type RunningBinary } from "./fixtures/binary";
import { floats, grpcClient } from "./fixtures/grpc-client";
import { buildBinary } from "./fixtures/build";

const root = tempDir("modeld-bin-");
const binDir = join(root, "bin");
const binary = join(binDir, "modeld");

beforeAll(() => {
  const built = join(root, "build", "modeld");
  buildBinary(built);
  mkdirSync(binDir);
  copyFileSync(built, binary);
  chmodSync(binary, 0o555);
  chmodSync(binDir, 0o555); // the binary's location is read-only
}, 120_000);

afterAll(() => {
  chmodSync(binDir, 0o755);
  cleanup({ root } as never);
});

describe("the compiled binary", () => {
  let server: RunningBinary;
  const data = join(root, "data");

  test("serves, loads the demo model and stops cleanly on SIGTERM", async () => {
    server = await startBinary(binary, { MODELD_DATA_DIR: data, XDG_CACHE_HOME: join(root, "cache") }, root);
    const health = await fetch(`${server.url}/health`);
    expect(health.status).toBe(200);

    const admin = tokenFor(binary, data, root);
    const auth = { authorization: `Bearer ${admin}` };
    const load = await fetch(`${server.url}/api/v1/models/demo/load`, { method: "POST", headers: auth });
    expect(load.status).toBe(202);
    const job = (await load.json()) as { id: string };
    const done = (await (await fetch(`${server.url}/api/v1/jobs/${job.id}?wait=20`, { headers: auth })).json()) as { state: string };
    expect(done.state).toBe("completed");

    const infer = await fetch(`${server.url}/v2/models/demo/infer`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [2, 4], data: [[1, 2, 3, 4], [0, -1, 0.5, 10]] }] }),
    });
    expect(infer.status).toBe(200);
    expect(((await infer.json()) as { outputs: { data: number[] }[] }).outputs[0]!.data).toEqual([3, 5, 7, 9, 1, -1, 2, 21]);
    // A body this large is parsed in the JSON codec thread, an entrypoint embedded in the binary.
    const rows = 20_000;
    const large = await fetch(`${server.url}/v2/models/demo/infer`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [rows, 4], data: Array.from({ length: rows }, () => [1, 2, 3, 4]) }] }),
    });
    expect(large.status).toBe(200);
    expect(((await large.json()) as { outputs: { data: number[] }[] }).outputs[0]!.data.slice(-4)).toEqual([3, 5, 7, 9]);

    const docs = await fetch(`${server.url}/docs/scalar.js`);
    expect(docs.status).toBe(200);
    expect((await docs.arrayBuffer()).byteLength).toBeGreaterThan(1_000_000);

    // The native library was extracted once, content-addressed, into the cache dir.
    const cached = readdirSync(join(root, "cache", "modeld"));
    expect(cached.filter((d) => d.startsWith("onnxruntime-"))).toHaveLength(1);
    expect(existsSync(join(binDir, "libonnxruntime.so.1"))).toBe(false);

    expect(await server.stop("SIGTERM")).toBe(0);
  }, 60_000);

  test("a second start reuses the extracted library and restores the loaded model", async () => {
    server = await startBinary(binary, { MODELD_DATA_DIR: data, XDG_CACHE_HOME: join(root, "cache") }, root);
    const admin = tokenFor(binary, data, root);
    const jobs = (await (await fetch(`${server.url}/api/v1/jobs?limit=1`, { headers: { authorization: `Bearer ${admin}` } })).json()) as {
      jobs: { requestedBy: string; modelId: string }[];
    };
    expect(jobs.jobs[0]).toMatchObject({ requestedBy: "restore", modelId: "demo" });
    expect(readdirSync(join(root, "cache", "modeld")).filter((d) => d.startsWith("onnxruntime-"))).toHaveLength(1);
    expect(await server.stop("SIGINT")).toBe(0);
  }, 60_000);
});

describe("gRPC from the compiled binary", () => {
  test("infer with raw contents past grpc-js's default 4 MiB limit, a stream, metadata, config, statistics, load and unload", async () => {
    const data = join(root, "grpc-data");
    const server = await startBinary(binary, { MODELD_DATA_DIR: data, XDG_CACHE_HOME: join(root, "cache"), MODELD_GRPC_PORT: "0" }, root);
    const port = /"grpcPort":(\d+)/.exec(server.logs())![1];
    const client = grpcClient(`127.0.0.1:${port}`, tokenFor(binary, data, root));
    try {
      expect(await client.call("RepositoryModelLoad", { model_name: "demo" })).toEqual({});
      expect(await client.call("ModelReady", { name: "demo" })).toEqual({ ready: true });
      expect((await client.call("ModelMetadata", { name: "demo" })).inputs).toEqual([{ name: "x", datatype: "FP32", shape: [-1, 4] }]);
      expect((await client.call("ModelConfig", { name: "demo" })).config).toMatchObject({ name: "demo", max_batch_size: 0, input: [{ name: "x", data_type: "TYPE_FP32", dims: [-1, 4] }] });
      const rows = 327_680; // 5 MiB of float32 each way
      const x = new Float32Array(rows * 4).map((_, i) => i % 7);
      const res = await client.call("ModelInfer", { model_name: "demo", inputs: [{ name: "x", datatype: "FP32", shape: [rows, 4] }], raw_input_contents: [Buffer.from(x.buffer)] });
      const y = floats(res.raw_output_contents[0]);
      expect(res.outputs[0].shape).toEqual([rows, 4]);
      expect(y.length).toBe(rows * 4);
      expect(y.every((v, i) => v === 2 * (i % 7) + 1)).toBe(true);
      const stream = client.stream();
      stream.send({ model_name: "demo", id: "streamed", inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }] });
      const [answer] = await stream.received(1);
      expect(answer.error_message).toBe("");
      expect(floats(answer.infer_response.raw_output_contents[0])).toEqual([3, 5, 7, 9]);
      stream.end();
      expect((await stream.status).code).toBe(0);
      const [stats] = (await client.call("ModelStatistics", { name: "demo", version: "1" })).model_stats;
      expect(stats.inference_stats.success.count).toBe(2);
      expect(await client.call("RepositoryModelUnload", { model_name: "demo" })).toEqual({});
      expect(await client.call("ModelReady", { name: "demo" })).toEqual({ ready: false });
    } finally {
      client.close();
      expect(await server.stop("SIGTERM")).toBe(0);
    }
  }, 90_000);
});

function tokenFor(bin: string, data: string, home: string): string {
  return Bun.spawnSync([bin, "token", "--sub", "ops", "--role", "admin"], { env: { MODELD_DATA_DIR: data, HOME: home } }).stdout.toString().trim();
}

// A hardened host mounts /tmp noexec; Bun extracts the addon there. Simulated
// with a private mount namespace, where /tmp is a fresh noexec tmpfs.
const canUnshare = Bun.spawnSync(["unshare", "-m", "--propagation", "private", "sh", "-c", "mount -t tmpfs -o noexec tmpfs /tmp"]).exitCode === 0;
if (!canUnshare) console.warn("skipping the noexec /tmp test: unshare -m with mount is not permitted here");

test.skipIf(!canUnshare)("with /tmp mounted noexec, the binary moves its TMPDIR into the cache dir and loads", async () => {
  const outside = mkdtempSync("/var/tmp/modeld-noexec-");
  try {
    copyFileSync(binary, join(outside, "modeld"));
    chmodSync(join(outside, "modeld"), 0o755);
    const env = { MODELD_DATA_DIR: join(outside, "data"), XDG_CACHE_HOME: join(outside, "cache") };
    const script = `mount -t tmpfs -o noexec tmpfs /tmp && exec ${join(outside, "modeld")} serve`;
    const server = await startBinary(["unshare", "-m", "--propagation", "private", "sh", "-c", script], env, outside);
    try {
      expect(server.logs()).toContain("is mounted noexec; restarting with TMPDIR=");
      const auth = { authorization: `Bearer ${tokenFor(join(outside, "modeld"), env.MODELD_DATA_DIR, outside)}` };
      const job = (await (await fetch(`${server.url}/api/v1/models/demo/load`, { method: "POST", headers: auth })).json()) as { id: string };
      const done = (await (await fetch(`${server.url}/api/v1/jobs/${job.id}?wait=20`, { headers: auth })).json()) as { state: string };
      expect(done.state).toBe("completed");
    } finally {
      expect(await server.stop()).toBe(0);
    }
  } finally {
    rmSync(outside, { recursive: true, force: true });
  }
}, 60_000);
