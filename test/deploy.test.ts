import { expect, test } from "bun:test";
import { join } from "node:path";
import { hasTool, requireTools } from "./fixtures/build";
import { imageEnvironment, unitEnvironment } from "../scripts/shipped-env";

const present = hasTool("systemd-analyze");
if (!present && !requireTools) console.warn("skipping the systemd unit check: systemd-analyze is not installed (apt-get install systemd)");

test.skipIf(!present && !requireTools)("deploy/modeld.service passes systemd-analyze verify and scores exposure <= 2.5", () => {
  const r = Bun.spawnSync(["bash", join(import.meta.dir, "../scripts/check-systemd.sh")]);
  const out = r.stdout.toString() + r.stderr.toString();
  expect({ code: r.exitCode, out }).toMatchObject({ code: 0 });
  const score = Number(/exposure: ([\d.]+)/.exec(out)?.[1]);
  expect(score).toBeLessThanOrEqual(2.5);
});

test("the unit and the container image set glibc's allocator alike", () => {
  const unit = unitEnvironment("MALLOC_");
  expect(Object.keys(unit).sort()).toEqual(["MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_"]);
  expect(imageEnvironment("MALLOC_")).toEqual(unit);
});
