// The container image, built and run the way KServe's pod runs it: the model
// mounted read-only at /mnt/models, MODELD_LOAD_ON_START, a read-only root
// filesystem with a writable state volume, ready only once the model serves,
// and an inference through the published port.
//
// podman needs two settings on hosts like this one, where the process may not
// raise resource limits and cgroups are mounted in hybrid mode: no default
// ulimits (containers.conf) and runc with the cgroupfs manager. crun refuses
// hybrid cgroups, and with podman's default ulimits every runtime fails with
// "setrlimit RLIMIT_NOFILE: Operation not permitted".
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { IMAGE } from "../scripts/image";
import { cleanup, tempDir } from "./helpers";

const repo = join(import.meta.dir, "..");
const tools = ["buildah", "podman", "runc"].filter((t) => !Bun.which(t));
const required = process.env.CI_REQUIRE_TOOLS === "1";
if (tools.length && required) throw new Error(`the image test needs ${tools.join(", ")} (CI installs them with apt)`);
if (tools.length) console.warn(`image test skipped: ${tools.join(", ")} not installed`);

const root = tempDir("modeld-image-");
const conf = join(root, "containers.conf");
const podman = (...args: string[]) =>
  Bun.spawnSync(["podman", "--storage-driver", "vfs", "--runtime", "runc", "--cgroup-manager", "cgroupfs", ...args], {
    env: { ...process.env, CONTAINERS_CONF: conf },
    stdout: "pipe",
    stderr: "pipe",
  });
const name = `modeld-test-${process.pid}`;

beforeAll(() => {
  if (tools.length) return;
  writeFileSync(conf, "[containers]\ndefault_ulimits = []\n");
  const built = Bun.spawnSync([process.execPath, join(repo, "scripts/image.ts")], { cwd: repo, stdout: "pipe", stderr: "pipe" });
  if (built.exitCode !== 0) throw new Error(`npm run image failed:\n${built.stderr.toString()}`);
}, 300_000);

afterAll(() => {
  if (!tools.length) podman("rm", "-f", name);
  cleanup({ root } as never);
});

test.skipIf(tools.length > 0)("the image serves a read-only model at /mnt/models, ready only once it serves, as KServe runs it", async () => {
  const models = join(root, "models");
  mkdirSync(join(models, "demo", "1"), { recursive: true });
  copyFileSync(join(repo, "assets/demo.onnx"), join(models, "demo", "1", "model.onnx"));
  chmodSync(root, 0o755);
  const started = podman(
    "run", "-d", "--name", name,
    // Read-only root; the image's /var/lib/modeld volume is the writable state, as the runtime's emptyDir is.
    "--read-only",
    "-p", "127.0.0.1::8080",
    "-v", `${models}:/mnt/models:ro`,
    "-e", "MODELD_LOAD_ON_START=*", "-e", "MODELD_PUBLIC_INFERENCE=true",
    IMAGE,
  );
  expect({ exit: started.exitCode, stderr: started.exitCode ? started.stderr.toString() : "" }).toEqual({ exit: 0, stderr: "" });
  const port = /:(\d+)\s*$/.exec(podman("port", name, "8080").stdout.toString().trim())![1];
  const url = `http://127.0.0.1:${port}`;
  const seen: number[] = [];
  for (let i = 0; i < 200 && seen.at(-1) !== 200; i++) {
    seen.push(await fetch(`${url}/v2/health/ready`).then((r) => r.status, () => 0));
    if (seen.at(-1) !== 200) await Bun.sleep(50);
  }
  expect(seen.at(-1)).toBe(200);
  expect((await fetch(`${url}/v2/health/live`)).status).toBe(200);
  const res = await fetch(`${url}/v2/models/demo/infer`, { method: "POST", body: JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }] }) });
  expect(((await res.json()) as any).outputs[0].data).toEqual([3, 5, 7, 9]);
  // The process runs as the unprivileged user, and stops cleanly.
  expect(podman("exec", name, "/modeld", "--help").exitCode).toBe(0);
  expect(podman("inspect", "--format", "{{.Config.User}}", name).stdout.toString().trim()).toBe("65532:65532");
  expect(podman("stop", "-t", "10", name).exitCode).toBe(0);
  expect(podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.toString().trim()).toBe("0");
}, 120_000);
