// Reading a cgroup's memory limit from the files the kernel writes, for both
// cgroup versions, laid out in a temporary dir as they are under /sys/fs/cgroup.
// test/http/memory-limit.test.ts runs a server in a real cgroup.
import { afterAll, expect, test } from "bun:test";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cgroupMemory } from "../../src/platform/cgroup-memory";
import { tempDir } from "../helpers";

const root = tempDir();
afterAll(() => rmSync(root, { recursive: true, force: true }));
const MiB = 1024 * 1024;

function cgroupDir(mount: string, path: string, files: Record<string, string | number>): void {
  const dir = join(mount, path);
  mkdirSync(dir, { recursive: true });
  for (const [name, value] of Object.entries(files)) writeFileSync(join(dir, name), `${value}\n`);
}

const mountinfo = (lines: string[]) => ["23 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw", ...lines].join("\n");

test("cgroup v2: the tightest limit among the process's cgroup and its ancestors, less the working set", () => {
  const mount = join(root, "v2");
  cgroupDir(mount, "/", { "cgroup.controllers": "cpu memory" }); // the root has no memory.max
  cgroupDir(mount, "/system.slice", { "memory.max": 800 * MiB, "memory.current": 700 * MiB, "memory.stat": `anon 1\ninactive_file ${50 * MiB}\nactive_file 0` });
  cgroupDir(mount, "/system.slice/modeld.service", { "memory.max": 1024 * MiB, "memory.current": 600 * MiB, "memory.stat": `inactive_file ${200 * MiB}` });
  const read = () => ({ cgroup: "0::/system.slice/modeld.service\n", mountinfo: mountinfo([`31 23 0:26 / ${mount} rw - cgroup2 cgroup2 rw`]) });
  // The slice: 800 MiB less (700 − 50) MiB in use; the service alone would leave 624 MiB.
  expect(cgroupMemory(read)).toEqual({ path: "/system.slice", limitBytes: 800 * MiB, roomBytes: 150 * MiB });
});

test("cgroup v1: the memory hierarchy's limit_in_bytes, with 2^63 (rounded to a page) meaning none", () => {
  const mount = join(root, "v1");
  cgroupDir(mount, "/", { "memory.limit_in_bytes": "9223372036854771712", "memory.usage_in_bytes": 9000 * MiB, "memory.stat": "total_inactive_file 0" });
  cgroupDir(mount, "/docker/abc", { "memory.limit_in_bytes": 300 * MiB, "memory.usage_in_bytes": 120 * MiB, "memory.stat": `inactive_file ${99 * MiB}\ntotal_inactive_file ${20 * MiB}` });
  const lines = [`35 31 0:32 / ${mount} rw,relatime - cgroup cgroup rw,memory`, `36 31 0:33 / ${join(root, "cpu")} rw - cgroup cgroup rw,cpu`];
  const read = () => ({ cgroup: "5:cpu:/other\n4:memory:/docker/abc\n0::/\n", mountinfo: mountinfo(lines) });
  expect(cgroupMemory(read)).toEqual({ path: "/docker/abc", limitBytes: 300 * MiB, roomBytes: 200 * MiB });
});

test("in a cgroup namespace the mount's root is the process's own cgroup", () => {
  const mount = join(root, "ns");
  cgroupDir(mount, "/", { "memory.max": 256 * MiB, "memory.current": 56 * MiB, "memory.stat": "inactive_file 0" });
  // A container sees its cgroup as "/" (namespaced) or by its host path with the mount rooted there.
  for (const [cgroup, mountRoot] of [["0::/", "/"], ["0::/kubepods/pod1/c1", "/kubepods/pod1/c1"]] as const) {
    const read = () => ({ cgroup, mountinfo: mountinfo([`31 23 0:26 ${mountRoot} ${mount} rw - cgroup2 cgroup2 rw`]) });
    expect(cgroupMemory(read)).toMatchObject({ limitBytes: 256 * MiB, roomBytes: 200 * MiB });
  }
});

test("no limit, no memory cgroup mounted, or nothing readable: undefined", () => {
  const mount = join(root, "unlimited");
  cgroupDir(mount, "/a", { "memory.max": "max", "memory.current": 10 * MiB });
  const v2 = (cgroup: string, lines: string[]) => () => ({ cgroup, mountinfo: mountinfo(lines) });
  expect(cgroupMemory(v2("0::/a\n", [`31 23 0:26 / ${mount} rw - cgroup2 cgroup2 rw`]))).toBeUndefined();
  expect(cgroupMemory(v2("0::/a\n", []))).toBeUndefined();
  expect(cgroupMemory(v2("4:memory:/a\n", [`31 23 0:26 / ${mount} rw - cgroup2 cgroup2 rw`]))).toBeUndefined();
  expect(
    cgroupMemory(() => {
      throw new Error("ENOENT: /proc/self/cgroup");
    }),
  ).toBeUndefined();
});
