// CUDA cannot run here; the detection and fallback paths are what can be
// tested, with a fake provider library and with real CPU loads.
import { afterAll, describe, expect, test } from "bun:test";
import { cpSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { LifecycleError } from "../../src/lifecycle/errors";
import { availableProviders } from "../../src/runtime/native";
import { chooseProviders } from "../../src/lifecycle/providers";
import { startBinary } from "../fixtures/binary";
import { affineModel } from "../fixtures/onnx-builder";
import { cleanup, client, SECRET, startTestService, tempDir, testEnv, token, writeModel } from "../helpers";

const dirs: string[] = [];
afterAll(() => dirs.forEach((root) => cleanup({ root } as never)));

describe("provider detection", () => {
  test("cuda counts as available only with both provider libraries beside libonnxruntime", () => {
    const dir = tempDir();
    dirs.push(dir);
    expect(availableProviders(dir)).toEqual(["cpu"]);
    writeFileSync(join(dir, "libonnxruntime_providers_cuda.so"), "");
    expect(availableProviders(dir)).toEqual(["cpu"]);
    writeFileSync(join(dir, "libonnxruntime_providers_shared.so"), "");
    expect(availableProviders(dir)).toEqual(["cuda", "cpu"]);
  });

  test("missing cuda falls back to cpu with a warning, or fails when fallback is off", () => {
    expect(chooseProviders(["cuda", "cpu"], ["cuda", "cpu"], false)).toEqual({ chosen: ["cuda", "cpu"], warnings: [] });
    const fb = chooseProviders(["cuda"], ["cpu"], true);
    expect(fb.chosen).toEqual(["cpu"]);
    expect(fb.warnings[0]).toContain("falling back");
    expect(() => chooseProviders(["cuda", "cpu"], ["cpu"], false)).toThrow(LifecycleError);
    try {
      chooseProviders(["cuda"], ["cpu"], false);
    } catch (e) {
      expect((e as LifecycleError).code).toBe("PROVIDER_UNAVAILABLE");
      expect((e as LifecycleError).message).toContain("MODELD_ORT_DIR");
    }
  });
});

describe("loads on a host without CUDA", () => {
  test("MODELD_EXECUTION_PROVIDERS=cuda,cpu loads on cpu; without fallback the job fails cleanly; per-model providers override", async () => {
    const t = testEnv({ MODELD_EXECUTION_PROVIDERS: "cuda,cpu", MODELD_ALLOW_CPU_FALLBACK: "true" });
    dirs.push(t.root);
    writeModel(t.modelDir, "m.onnx", affineModel());
    const svc = await startTestService(t);
    try {
      const api = await client(svc);
      const done = await api.waitJob((await api.json("POST", "/api/v1/models/m/load")).body.id);
      expect(done).toMatchObject({ state: "completed", outcome: { summary: "loaded on cpu" } });
    } finally {
      await svc.close();
    }

    const strict = testEnv({ MODELD_EXECUTION_PROVIDERS: "cpu", MODELD_ALLOW_CPU_FALLBACK: "false" });
    dirs.push(strict.root);
    writeModel(strict.modelDir, "gpu-only.onnx", affineModel());
    const svc2 = await startTestService(strict);
    try {
      const api = await client(svc2);
      await api.json("POST", "/api/v1/models", { body: { id: "pinned", path: "gpu-only.onnx", providers: ["cuda"] } });
      const done = await api.waitJob((await api.json("POST", "/api/v1/models/pinned/load")).body.id);
      expect(done).toMatchObject({ state: "failed", error: { code: "PROVIDER_UNAVAILABLE" } });
      expect((await api.json("GET", "/api/v1/models/pinned")).body).toMatchObject({ state: "failed", providers: ["cuda"] });
      // The default providers still work on the same server.
      expect((await api.waitJob((await api.json("POST", "/api/v1/models/gpu-only/load")).body.id)).state).toBe("completed");
    } finally {
      await svc2.close();
    }
  });

  test("MODELD_ORT_DIR loads an external ONNX Runtime and logs the providers it found", async () => {
    const root = tempDir();
    dirs.push(root);
    const pkgLib = dirname(require.resolve("onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1"));
    const ortDir = join(root, "ort");
    mkdirSync(ortDir);
    cpSync(join(pkgLib, "libonnxruntime.so.1"), join(ortDir, "libonnxruntime.so.1"));
    const t = testEnv({ MODELD_ORT_DIR: ortDir, MODELD_JWT_SECRET: SECRET, MODELD_EXECUTION_PROVIDERS: "cuda,cpu" }, join(root, "svc"));
    writeModel(t.modelDir, "m.onnx", affineModel());
    const repo = join(import.meta.dir, "../..");
    const s = await startBinary([process.execPath, join(repo, "src/main.ts")], t.env, repo);
    try {
      expect(s.logs()).toContain(`"source":"external","libDir":"${ortDir}","providers":["cpu"]`);
      const auth = { authorization: `Bearer ${await token()}` };
      const job = await (await fetch(`${s.url}/api/v1/models/m/load`, { method: "POST", headers: auth })).json() as { id: string };
      const done = await (await fetch(`${s.url}/api/v1/jobs/${job.id}?wait=20`, { headers: auth })).json();
      expect(done).toMatchObject({ state: "completed", outcome: { summary: "loaded on cpu" } });
      // The session really runs on the external copy: the package's library is not mapped at all.
      const maps = require("node:fs").readFileSync(`/proc/${s.proc.pid}/maps`, "utf8") as string;
      expect(maps).toContain(join(ortDir, "libonnxruntime.so.1"));
      expect(maps).not.toContain(join(pkgLib, "libonnxruntime.so.1"));
      await Bun.sleep(50);
      expect(s.logs()).toContain("execution provider cuda is not available; falling back to cpu");
    } finally {
      expect(await s.stop()).toBe(0);
    }

    const bad = Bun.spawnSync([process.execPath, join(repo, "src/main.ts"), "serve"], {
      env: { PATH: process.env.PATH!, HOME: root, ...t.env, MODELD_ORT_DIR: join(root, "nowhere"), MODELD_PORT: "0" },
    });
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr.toString()).toContain("MODELD_ORT_DIR");
  }, 60_000);
});
