// The shipped artifact, for real: build the single binary, copy it alone into
// an empty read-only directory, start it with no node_modules in reach, load a
// model, stop it with SIGTERM.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
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

    const infer = await fetch(`${server.url}/v2/models/demo/infer`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [2, 4], data: [[1, 2, 3, 4], [0, -1, 0.5, 10]] }] }),
    });
    expect(infer.status).toBe(200);
    expect(((await infer.json()) as { outputs: { data: number[] }[] }).outputs[0]!.data).toEqual([3, 5, 7, 9, 1, -1, 2, 21]);

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
