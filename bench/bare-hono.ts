// The ceilings for the HTTP comparisons: a bare Hono GET, and a bare Hono POST
// that parses a JSON body and answers JSON, on Bun.serve.
import { Hono } from "hono";

const app = new Hono().get("/", (c) => c.text("ok")).post("/", async (c) => c.json(await c.req.json()));
const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch });
console.log(JSON.stringify({ msg: "listening", url: `http://127.0.0.1:${server.port}` }));
