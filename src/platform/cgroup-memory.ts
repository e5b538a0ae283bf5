// The memory limit of this process's cgroup. systemd's MemoryMax= and a
// container's --memory put one below the host's RAM, and the kernel OOM-kills
// the whole server when it is reached, whatever /proc/meminfo says. Measured
// here: a 400 MB load in a 300 MiB cgroup was admitted on MemAvailable (23 GiB)
// and the server was killed, with the models it served.
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";

export interface CgroupMemory {
  /** The cgroup with the tightest limit, as /proc/self/cgroup names it. */
  path: string;
  limitBytes: number;
  /** The least room under any limit: the limit less the working set (usage less inactive file pages, which are reclaimed first). */
  roomBytes: number;
}

interface ProcFiles {
  /** /proc/self/cgroup */
  cgroup: string;
  /** /proc/self/mountinfo */
  mountinfo: string;
}

/** Limits at or above this are the kernel's way of saying "none" (cgroup v1 writes 2^63 rounded to a page). */
const NO_LIMIT = 2 ** 60;

const readProc = (): ProcFiles => ({ cgroup: readFileSync("/proc/self/cgroup", "utf8"), mountinfo: readFileSync("/proc/self/mountinfo", "utf8") });

/** The memory cgroup's limit and room, or undefined when no limit is set or none can be read (not Linux, no permission). */
export function cgroupMemory(read: () => ProcFiles = readProc): CgroupMemory | undefined {
  let proc: ProcFiles;
  try {
    proc = read();
  } catch {
    return undefined;
  }
  let tightest: CgroupMemory | undefined;
  for (const { dir, mount, path } of memoryCgroupDirs(proc)) {
    // Every ancestor's limit applies too: a systemd slice's, a pod's.
    for (let level = dir, name = path; ; level = resolve(level, ".."), name = join(name, "..")) {
      const usage = levelUsage(level);
      if (usage && usage.limit < NO_LIMIT) {
        const room = usage.limit - Math.max(0, usage.current - usage.inactiveFile);
        tightest = {
          path: tightest && tightest.limitBytes <= usage.limit ? tightest.path : name,
          limitBytes: Math.min(tightest?.limitBytes ?? Infinity, usage.limit),
          roomBytes: Math.min(tightest?.roomBytes ?? Infinity, room),
        };
      }
      if (level.length <= mount.length) break;
    }
  }
  return tightest;
}

/** Where this process's memory cgroup lives: cgroup v1's memory hierarchy, and cgroup v2's. */
function memoryCgroupDirs({ cgroup, mountinfo }: ProcFiles): { dir: string; mount: string; path: string }[] {
  const dirs = [];
  for (const line of cgroup.split("\n")) {
    const [, id, controllers, path] = /^(\d+):([^:]*):(.*)$/.exec(line) ?? [];
    if (path === undefined) continue;
    const v2 = id === "0" && controllers === "";
    if (!v2 && !controllers!.split(",").includes("memory")) continue;
    const mount = mountinfo.split("\n").map(mountOf).find((m) => m && (v2 ? m.type === "cgroup2" : m.type === "cgroup" && m.superOptions.includes("memory")));
    if (!mount) continue;
    // In a cgroup namespace the mount's root is this cgroup itself (or above it).
    const inside = path.startsWith(mount.root) ? path.slice(mount.root === "/" ? 0 : mount.root.length) : "/";
    dirs.push({ dir: resolve(mount.point, `.${inside}`), mount: resolve(mount.point), path });
  }
  return dirs;
}

function mountOf(line: string): { root: string; point: string; type: string; superOptions: string[] } | undefined {
  const f = line.split(" ");
  const dash = f.indexOf("-");
  if (dash < 0 || f.length < dash + 4) return undefined;
  const unescape = (s: string) => s.replace(/\\040/g, " ");
  return { root: unescape(f[3]!), point: unescape(f[4]!), type: f[dash + 1]!, superOptions: f[dash + 3]!.split(",") };
}

/** One cgroup's limit and usage, from v2's files or v1's; undefined where neither is readable. */
function levelUsage(dir: string): { limit: number; current: number; inactiveFile: number } | undefined {
  const text = (name: string) => {
    try {
      return readFileSync(join(dir, name), "utf8").trim();
    } catch {
      return undefined;
    }
  };
  const stat = text("memory.stat") ?? "";
  const statValue = (key: string) => Number(new RegExp(`^${key} (\\d+)$`, "m").exec(stat)?.[1] ?? 0);
  const v2 = text("memory.max");
  if (v2 !== undefined) return { limit: v2 === "max" ? Infinity : Number(v2), current: Number(text("memory.current") ?? 0), inactiveFile: statValue("inactive_file") };
  const v1 = text("memory.limit_in_bytes");
  if (v1 !== undefined) return { limit: Number(v1), current: Number(text("memory.usage_in_bytes") ?? 0), inactiveFile: statValue("total_inactive_file") };
  return undefined;
}
