// gRPC against HTTP with binary tensors, on the same tiny model in the same
// server and the same run: latency at concurrency 1, throughput at 64.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { affineModel } from "../test/fixtures/onnx-builder";
import { grpcClient } from "../test/fixtures/grpc-client";
import { adminToken, hammer, header, loadAndWait, removeDir, startModeld, stats, tempDir } from "./lib";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const us = (ms: number) => `${Math.round(ms * 1000)} µs`;

/** hammer() for any promise-returning call. */
const asResponse = (f: () => Promise<unknown>) => () => f().then(() => new Response(""));

export async function benchGrpc(): Promise<void> {
  const dir = tempDir();
  mkdirSync(join(dir, "models"), { recursive: true });
  writeFileSync(join(dir, "models", "tiny.onnx"), affineModel());
  const server = await startModeld(dir, { MODELD_GRPC_PORT: "0" });
  const token = await adminToken();
  const port = /"grpcPort":(\d+)/.exec(server.logs())![1];
  const client = grpcClient(`127.0.0.1:${port}`, token);
  try {
    await loadAndWait(server.url, token, "tiny");
    const x = Buffer.from(new Float32Array([1, 2, 3, 4]).buffer);
    const header1 = new TextEncoder().encode(JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], parameters: { binary_data_size: 16 } }], parameters: { binary_data_output: true } }));
    const body = new Uint8Array(header1.byteLength + 16);
    body.set(header1);
    body.set(x, header1.byteLength);
    const http = () =>
      fetch(`${server.url}/v2/models/tiny/infer`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "Inference-Header-Content-Length": String(header1.byteLength), "content-type": "application/octet-stream" },
        body,
      });
    const grpc = asResponse(() => client.call("ModelInfer", { model_name: "tiny", inputs: [{ name: "x", datatype: "FP32", shape: [1, 4] }], raw_input_contents: [x] }));
    for (const f of [http, grpc]) await hammer(4, 1, f);
    const lat = { http: [] as number[], grpc: [] as number[] };
    const rps = { http: [] as number[], grpc: [] as number[] };
    // Interleaved rounds, so drift on a shared host hits both alike.
    for (let round = 0; round < 3; round++) {
      for (const [name, f] of [["http", http], ["grpc", grpc]] as const) {
        lat[name].push(...(await hammer(1, SECONDS / 3, f)).latencies);
        rps[name].push((await hammer(64, SECONDS / 3, f)).rps);
      }
    }
    header("gRPC vs HTTP binary tensors (tiny model, same server, same run)");
    console.log("| transport | c=1 p50 | c=1 p99 | c=64 (median of 3 rounds) |\n| --- | --- | --- | --- |");
    for (const name of ["http", "grpc"] as const) {
      const s = stats(lat[name]);
      console.log(`| ${name === "http" ? "HTTP, binary tensor extension" : "gRPC, raw contents (grpc-js client)"} | ${us(s.median)} | ${us(s.p99)} | ${stats(rps[name]).median.toFixed(0)} req/s |`);
    }
    const [h, g] = [stats(lat.http).median, stats(lat.grpc).median];
    console.log(`\ngRPC / HTTP: p50 ${(g / h).toFixed(2)}x, throughput ${(stats(rps.grpc).median / stats(rps.http).median).toFixed(2)}x`);
  } finally {
    client.close();
    await server.stop();
    removeDir(dir);
  }
}
