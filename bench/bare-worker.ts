// modeld's architecture with nothing else: a bare Hono server that parses an
// Open Inference Protocol body, runs the model in one worker thread (the HTTP
// thread never calls ONNX Runtime) and answers JSON. No auth, no validation, no
// statistics: the floor modeld's own overhead is measured against.
import { Hono } from "hono";

const worker = new Worker(new URL("./bare-worker-thread.ts", import.meta.url).href);
await new Promise((ready) => (worker.onmessage = ready));
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
  const y = await new Promise<number[]>((resolve) => (pending.set(id, resolve), worker.postMessage({ id, x })));
  return c.json({ outputs: [{ name: "y", datatype: "FP32", shape: [1, y.length], data: y }] });
});
const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch });
console.log(JSON.stringify({ msg: "listening", url: `http://127.0.0.1:${server.port}` }));
