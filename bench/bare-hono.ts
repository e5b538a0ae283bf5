// The ceiling for the throughput comparison: a bare Hono GET on Bun.serve.
import { Hono } from "hono";

const app = new Hono().get("/", (c) => c.text("ok"));
const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch });
console.log(JSON.stringify({ msg: "listening", url: `http://127.0.0.1:${server.port}` }));
