// gRPC against HTTP with binary tensors, on the same tiny model in the same
// server and the same run: latency at concurrency 1, throughput at 64.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { affineModel } from "../test/fixtures/onnx-builder";
import { grpcClient } from "../test/fixtures/grpc-client";
import { startBinary } from "../test/fixtures/binary";
import { adminToken, hammer, header, loadAndWait, removeDir, repo, startModeld, stats, tempDir, WARMUP_SECONDS } from "./lib";

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
  // The transports' own floors, with the same clients: a bare Hono JSON echo and a bare grpc-js echo.
  const bareHttp = await startBinary([process.execPath, join(repo, "bench/bare-hono.ts")], {}, repo);
  const bareGrpcServer = await startBinary([process.execPath, join(repo, "bench/bare-grpc.ts")], {}, repo);
  const bareGrpc = grpcClient(bareGrpcServer.url.replace("http://", ""), null);
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
    const floors = {
      bareHttp: () => fetch(`${bareHttp.url}/`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"x":[1,2,3,4]}' }),
      bareGrpc: asResponse(() => bareGrpc.call("ModelInfer", { model_name: "tiny", inputs: [{ name: "x", datatype: "FP32", shape: [1, 4] }], raw_input_contents: [x] })),
    };
    const runs = { http, grpc, ...floors };
    for (const f of Object.values(runs)) await hammer(4, WARMUP_SECONDS, f);
    const lat: Record<string, number[]> = {};
    const rps: Record<string, number[]> = {};
    // Interleaved rounds, so drift on a shared host hits every server alike.
    for (let round = 0; round < 3; round++) {
      for (const [name, f] of Object.entries(runs)) {
        (lat[name] ??= []).push(...(await hammer(1, SECONDS / 3, f)).latencies);
        (rps[name] ??= []).push((await hammer(64, SECONDS / 3, f)).rps);
      }
    }
    header("gRPC vs HTTP binary tensors (tiny model, same server, same run)");
    console.log("| transport | c=1 p50 | c=1 p99 | c=64 (median of 3 rounds) |\n| --- | --- | --- | --- |");
    const labels: Record<string, string> = {
      http: "modeld, HTTP binary tensor extension",
      grpc: "modeld, gRPC raw contents",
      bareHttp: "floor: bare Hono JSON echo (same HTTP client)",
      bareGrpc: "floor: bare grpc-js echo (same gRPC client)",
    };
    for (const name of Object.keys(runs)) {
      const s = stats(lat[name]!);
      console.log(`| ${labels[name]} | ${us(s.median)} | ${us(s.p99)} | ${stats(rps[name]!).median.toFixed(0)} req/s |`);
    }
    const ratio = (a: string, b: string) => `p50 ${(stats(lat[a]!).median / stats(lat[b]!).median).toFixed(2)}x, throughput ${(stats(rps[a]!).median / stats(rps[b]!).median).toFixed(2)}x`;
    console.log(`\nmodeld gRPC / modeld HTTP: ${ratio("grpc", "http")}; the floors, grpc-js / Hono: ${ratio("bareGrpc", "bareHttp")}`);
  } finally {
    client.close();
    bareGrpc.close();
    for (const s of [server, bareHttp, bareGrpcServer]) await s.stop();
    removeDir(dir);
  }
}
