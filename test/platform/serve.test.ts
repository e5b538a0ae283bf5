// The listener's idle timeout closes quiet connections and stalled uploads, and
// must not end a request that is waiting for modeld's own work.
import { afterAll, expect, test } from "bun:test";
import { connect } from "node:net";
import { listen, type Listener } from "../../src/platform/serve";
import { matmulChainModel } from "../fixtures/onnx-builder";
// Through the fixture, which keeps raw float16 working for the suites that run after this one.
import { rawRunMs } from "../fixtures/raw-ort";
import { cleanup, startTestService, testEnv, token, writeModel } from "../helpers";

const listeners: Listener[] = [];
afterAll(() => Promise.all(listeners.map((l) => l.stop(true))));

async function serve(fetch: Parameters<typeof listen>[0]["fetch"]): Promise<string> {
  const l = await listen({ hostname: "127.0.0.1", port: 0, idleTimeoutS: 1, fetch });
  listeners.push(l);
  return `http://127.0.0.1:${l.port}`;
}

/** Seconds until the server closes a kept-alive connection after one answered request. */
function idleClose(url: string, path: string): Promise<number> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    let answeredAt = 0;
    const socket = connect(Number(port), hostname, () => socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`));
    socket.on("data", () => (answeredAt ||= performance.now()));
    socket.on("close", () => resolve((performance.now() - answeredAt) / 1000)).on("error", reject);
  });
}

test("a request that says it awaits modeld's work outlasts the idle timeout; one that does not is ended; quiet connections still close", async () => {
  const url = await serve(async (req, env) => {
    if (new URL(req.url).searchParams.has("work")) env.awaitingWork?.();
    await Bun.sleep(Number(new URL(req.url).searchParams.get("ms")));
    return new Response("done");
  });
  // Bun checks idle timeouts on a 4 s tick, so a 1 s timeout ends a request within 4-8 s.
  const [worked, ended] = await Promise.allSettled([fetch(`${url}/?work&ms=9000`).then((r) => r.text()), fetch(`${url}/?ms=9000`).then((r) => r.text())]);
  expect(worked).toEqual({ status: "fulfilled", value: "done" });
  expect(ended.status).toBe("rejected");
  // After the work, the connection is guarded again: a keep-alive client that goes quiet is let go.
  expect(await idleClose(url, "/?work&ms=10")).toBeLessThan(10);
}, 40_000);

/** Rows of a [rows, 1024] input for which 1000 runs of the model take about `ms` on this host, measured with raw ONNX Runtime. */
async function rowsFor(path: string, ms: number): Promise<number> {
  const perRunMs = (rows: number) => rawRunMs(path, { x: { type: "float32", data: new Float32Array(rows * 1024), dims: [rows, 1024] } }, 10);
  // A run's time grows slower than its rows (work per run that rows share, the cores better used), so the
  // estimate from 2 rows fell short (8.6 s where 20 were meant): it is measured again at its own size.
  let rows = 2;
  for (let step = 0; step < 2; step++) rows = Math.max(2, Math.ceil((rows * ms) / (1000 * (await perRunMs(rows)))));
  return rows;
}

test("a Triton client's repository load that takes longer than the idle timeout gets its answer", async () => {
  const t = testEnv();
  // Its warmup keeps the load busy past the 4-8 s in which a 1 s idle timeout ends a quiet request,
  // sized on this host: a fixed shape took 11 s on one run of this machine and 5 s on another, and
  // loads sized for 20 s took 12 to 37 s, so it aims at 30.
  const path = writeModel(t.modelDir, "slow.onnx", matmulChainModel(1024, 160));
  const rows = await rowsFor(path, 30_000);
  const svc = await startTestService(t);
  try {
    const admin = { authorization: `Bearer ${await token()}` };
    expect((await svc.app.request("/api/v1/models/slow", { method: "PATCH", headers: { ...admin, "content-type": "application/json" }, body: JSON.stringify({ warmup: { runs: 1000, shapes: { x: [rows, 1024] } } }) })).status).toBe(200);
    const url = await serve((req, env) => svc.app.fetch(req, env));
    const started = performance.now();
    const res = await fetch(`${url}/v2/repository/models/slow/load`, { method: "POST", headers: admin });
    expect({ status: res.status, body: await res.json() }).toEqual({ status: 200, body: {} });
    expect(performance.now() - started).toBeGreaterThan(9000);
  } finally {
    await svc.close();
    cleanup(t);
  }
}, 120_000);

test("the admin calls that hash model files (rescan, register a model or a version) say they await modeld's work", async () => {
  // Hashing a big repository or model takes minutes; a 120 s idle timeout answered such a rescan with an empty reply.
  const t = testEnv();
  writeModel(t.modelDir, "a.onnx", matmulChainModel(8, 1));
  writeModel(t.modelDir, "b.onnx", matmulChainModel(8, 1));
  writeModel(t.modelDir, "c.onnx", matmulChainModel(8, 1));
  const svc = await startTestService(t);
  try {
    const admin = { authorization: `Bearer ${await token()}`, "content-type": "application/json" };
    const calls: [string, string, unknown?][] = [
      ["POST", "/api/v1/models/rescan"],
      ["POST", "/api/v1/models", { id: "again", path: "a.onnx" }],
      ["POST", "/api/v1/models/again/versions", { path: "b.onnx" }],
    ];
    for (const [method, path, body] of calls) {
      let awaited = false;
      const res = await svc.app.request(path, { method, headers: admin, ...(body ? { body: JSON.stringify(body) } : {}) }, { awaitingWork: () => (awaited = true) });
      expect({ path, ok: res.ok, awaited }).toEqual({ path, ok: true, awaited: true });
    }
  } finally {
    await svc.close();
    cleanup(t);
  }
});
