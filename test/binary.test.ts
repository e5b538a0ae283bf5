// The shipped artifact, for real: build the single binary, copy it alone into
// an empty read-only directory, start it with no node_modules in reach, load a
// model, stop it with SIGTERM.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { cleanup, tempDir } from "./helpers";
import { startBinary, type RunningBinary } from "./fixtures/binary";
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

function tokenFor(bin: string, data: string, home: string): string {
  return Bun.spawnSync([bin, "token", "--sub", "ops", "--role", "admin"], { env: { MODELD_DATA_DIR: data, HOME: home } }).stdout.toString().trim();
}
