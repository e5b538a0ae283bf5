// modeld's architecture with nothing else: a bare Hono server that parses an
// Open Inference Protocol body, runs the model in one worker thread (the HTTP
// thread never calls ONNX Runtime) and answers JSON. No auth, no validation, no
// statistics: the floor modeld's own overhead is measured against.
// BENCH_SPIN_US: the worker stays awake that long after each answer, as
// modeld's does (MODELD_SPIN_US); unset, it sleeps at once.
import { Hono } from "hono";
import { newDoorbell, ring } from "../src/runtime/doorbell";

const worker = new Worker(new URL("./bare-worker-thread.ts", import.meta.url).href);
await new Promise((ready) => (worker.onmessage = ready));
const spinUs = Number(process.env.BENCH_SPIN_US ?? 0);
const bell = spinUs > 0 ? newDoorbell() : undefined;
if (bell) worker.postMessage({ doorbell: bell.buffer, spinUs });
const pending = new Map<number, (y: number[]) => void>();
let nextId = 0;
worker.onmessage = (e: MessageEvent<{ id: number; y: number[] }>) => {
  pending.get(e.data.id)?.(e.data.y);
  pending.delete(e.data.id);
};

const app = new Hono().post("/", async (c) => {
  const body = await c.req.json<{ inputs: { data: number[] }[] }>();
  const x = body.inputs[0]!.data;
  const id = nextId++;
  const y = await new Promise<number[]>((resolve) => {
    pending.set(id, resolve);
    worker.postMessage({ id, x });
    if (bell) ring(bell);
  });
  return c.json({ outputs: [{ name: "y", datatype: "FP32", shape: [1, y.length], data: y }] });
});
const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch });
console.log(JSON.stringify({ msg: "listening", url: `http://127.0.0.1:${server.port}` }));
