import { beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { createLogger } from "../src/log";
import { affineModel } from "./fixtures/onnx-builder";
import { buildPortable, modeldCommand, RUNTIMES } from "./fixtures/runtimes";
import { cleanup, testEnv, token, until, writeModel } from "./helpers";

describe("log", () => {
  const capture = (level: "debug" | "info" | "warn" | "error") => {
    const lines: Record<string, unknown>[] = [];
    return { lines, log: createLogger(level, { service: "modeld" }, (l) => lines.push(JSON.parse(l))) };
  };

  test("a child's lines carry every ancestor's fields, the nearest winning", () => {
    const { lines, log } = capture("info");
    const request = log.child({ requestId: "r1", who: "request" });
    request.child({ sub: "alice", who: "auth" }).warn("refused", { code: "FORBIDDEN" });
    request.info("done");
    expect(lines[0]).toMatchObject({ level: "warn", msg: "refused", service: "modeld", requestId: "r1", sub: "alice", who: "auth", code: "FORBIDDEN" });
    expect(lines[1]).toMatchObject({ level: "info", msg: "done", service: "modeld", requestId: "r1", who: "request" });
    expect(lines[1]).not.toHaveProperty("sub");
    expect(typeof lines[0]!.time).toBe("string");
  });

  test("lines below the level are not written, and enabled() says so", () => {
    const { lines, log } = capture("warn");
    const child = log.child({ requestId: "r2" });
    child.debug("no");
    child.info("no");
    child.error("yes");
    expect(lines.map((l) => l.msg)).toEqual(["yes"]);
    expect([child.enabled("info"), child.enabled("warn"), child.enabled("error")]).toEqual([false, true, true]);
  });
});

describe.each(RUNTIMES)("on %s", (runtime) => {
  beforeAll(() => {
    if (runtime !== "bun") buildPortable();
  });

  test("a server whose stdout reader is gone (`modeld serve | head`) serves on, dropping log lines, and stops cleanly", async () => {
    const t = testEnv();
    writeModel(t.modelDir, "affine.onnx", affineModel());
    const repo = join(import.meta.dir, "..");
    const proc = Bun.spawn([...modeldCommand(runtime), "serve"], {
      cwd: repo,
      env: { PATH: "/usr/bin:/bin", HOME: t.root, ...t.env, MODELD_PORT: "0" },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    try {
      // The reader goes before the first line: every log line after it meets a closed pipe.
      await proc.stdout.cancel();
      let stderr = "";
      const reading = (async () => {
        for await (const chunk of proc.stderr) stderr += new TextDecoder().decode(chunk);
      })();
      const url = (await until(async () => /listening on (http:\S+)/.exec(stderr)?.[1], (u) => u !== undefined || proc.exitCode !== null, 20_000))!;
      expect(url).toBeDefined();
      const auth = { authorization: `Bearer ${await token()}` };
      // A load job logs as it is queued, runs and ends.
      const job = (await (await fetch(`${url}/api/v1/models/affine/load`, { method: "POST", headers: auth })).json()) as { id: string };
      const done = await until(async () => ((await (await fetch(`${url}/api/v1/jobs/${job.id}`, { headers: auth })).json()) as { state: string }).state, (s) => s === "completed" || s === "failed");
      expect(done).toBe("completed");
      const res = await fetch(`${url}/v2/models/affine/infer`, { method: "POST", headers: auth, body: JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }] }) });
      expect(((await res.json()) as any).outputs[0].data).toEqual([3, 5, 7, 9]);
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
      await reading;
      expect(stderr).toContain("modeld: stdout is gone (EPIPE); log lines are dropped from now on, and serving goes on");
    } finally {
      proc.kill("SIGKILL");
      cleanup(t);
    }
  });
});
