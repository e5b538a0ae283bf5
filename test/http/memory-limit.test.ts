// A server in a memory cgroup, as systemd's MemoryMax= or a container's --memory
// puts it: the kernel OOM-kills the whole process at the cgroup's limit, so a
// load that cannot fit under it must fail INSUFFICIENT_MEMORY, and a budget in %
// is a share of the limit, not of the host's RAM. Before, a 120 MiB model in a
// 256 MiB cgroup was admitted on the host's free memory and the server killed.
// Making a cgroup needs root and a writable cgroupfs (as here and in CI); where
// that is refused, the test skips and says why.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startBinary, type RunningBinary } from "../fixtures/binary";
import { affineModel, bigModel } from "../fixtures/onnx-builder";
import { cleanup, testEnv, token, writeModel, type TestEnv } from "../helpers";

const LIMIT = 256 * 1024 * 1024;
const name = `modeld-test-${process.pid}`;

/** A memory cgroup of LIMIT bytes under the root of the memory hierarchy; the reason when that is refused. */
function makeCgroup(): { dir: string } | { refused: string } {
  try {
    if (existsSync("/sys/fs/cgroup/memory/memory.limit_in_bytes") || existsSync("/sys/fs/cgroup/memory/cgroup.procs")) {
      const dir = join("/sys/fs/cgroup/memory", name);
      mkdirSync(dir);
      writeFileSync(join(dir, "memory.limit_in_bytes"), String(LIMIT));
      return { dir };
    }
    if (readFileSync("/sys/fs/cgroup/cgroup.controllers", "utf8").includes("memory")) {
      writeFileSync("/sys/fs/cgroup/cgroup.subtree_control", "+memory");
      const dir = join("/sys/fs/cgroup", name);
      mkdirSync(dir);
      writeFileSync(join(dir, "memory.max"), String(LIMIT));
      if (existsSync(join(dir, "memory.swap.max"))) writeFileSync(join(dir, "memory.swap.max"), "0");
      return { dir };
    }
    return { refused: "no memory cgroup hierarchy is mounted" };
  } catch (err) {
    return { refused: String(err) };
  }
}

let t: TestEnv;
let cgroup: { dir: string } | { refused: string };
let admin: string;

beforeAll(async () => {
  cgroup = makeCgroup();
  if ("refused" in cgroup) return console.warn(`memory-limit test skipped: cannot make a memory cgroup here (${cgroup.refused})`);
  t = testEnv();
  writeModel(t.modelDir, "tiny.onnx", affineModel());
  // Created, its session would peak at ~2.1× the file: past the limit.
  writeModel(t.modelDir, "big.onnx", bigModel(120));
  admin = await token();
});

afterAll(() => {
  if ("dir" in cgroup) rmdirSync(cgroup.dir);
  if (t) cleanup(t);
});

/** modeld from source, moved into the cgroup before it execs. */
function startInCgroup(env: Record<string, string> = {}): Promise<RunningBinary> {
  const repo = join(import.meta.dir, "../..");
  const dir = (cgroup as { dir: string }).dir;
  return startBinary(["sh", "-c", `echo $$ > ${dir}/cgroup.procs && exec "$0" src/main.ts serve`, process.execPath], { ...t.env, ...env }, repo);
}

async function call(s: RunningBinary, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(s.url + path, {
    method,
    headers: { authorization: `Bearer ${admin}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

async function loadJob(s: RunningBinary, id: string) {
  const queued = await call(s, "POST", `/api/v1/models/${id}/load?activate=false`);
  expect(queued.status).toBe(202);
  return (await call(s, "GET", `/api/v1/jobs/${queued.body.id}?wait=60`)).body;
}

describe("a server in a memory cgroup", () => {
  test("a load that cannot fit under the cgroup's limit fails INSUFFICIENT_MEMORY naming it; the server and its models serve on", async () => {
    if ("refused" in cgroup) return;
    const s = await startInCgroup();
    try {
      expect(s.logs()).toContain(`"msg":"memory limited by a cgroup",`);
      expect(s.logs()).toContain(`"cgroup":"/${name}","limitBytes":${LIMIT}}`);
      expect((await loadJob(s, "tiny")).state).toBe("completed");
      const big = await loadJob(s, "big");
      expect(big.state).toBe("failed");
      expect(big.error.code).toBe("INSUFFICIENT_MEMORY");
      expect(big.error.message).toMatch(new RegExp(`^big@1 needs .* while its session is created but only .* is available under the 256.0 MiB memory limit of cgroup /${name}$`));
      const infer = await call(s, "POST", "/v2/models/tiny/infer", { inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }] });
      expect(infer.status).toBe(200);
      expect((await call(s, "GET", "/api/v1/models/big")).body.state).toBe("failed");
    } finally {
      expect(await s.stop()).toBe(0);
    }
  }, 60_000);

  test("MODELD_MEMORY_BUDGET in % is a share of the cgroup's limit; a budget in bytes above the limit is warned of", async () => {
    if ("refused" in cgroup) return;
    let s = await startInCgroup({ MODELD_MEMORY_BUDGET: "50%" });
    try {
      expect(s.logs()).toContain(`"limitBytes":${LIMIT},"budgetBytes":${LIMIT / 2}`);
      const big = await loadJob(s, "big");
      expect(big.error.code).toBe("INSUFFICIENT_MEMORY");
      expect(big.error.message).toContain("of the 128.0 MiB budget is free");
    } finally {
      expect(await s.stop()).toBe(0);
    }
    s = await startInCgroup({ MODELD_MEMORY_BUDGET: "1GiB" });
    try {
      expect(s.logs()).toContain(`MODELD_MEMORY_BUDGET (1.00 GiB) is above the 256.0 MiB memory limit of cgroup /${name}`);
      expect((await loadJob(s, "big")).error.message).toContain("while its session is created");
    } finally {
      expect(await s.stop()).toBe(0);
    }
  }, 60_000);
});
