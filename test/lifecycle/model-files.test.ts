// The stat identity recorded with a digest must be able to tell any later change.
import { expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fingerprint, statIdentity } from "../../src/lifecycle/model-files";
import { tempDir } from "../helpers";

test("a file fingerprinted while it is still being written is recorded as it settled: its identity and digest are the last write's", async () => {
  const dir = tempDir();
  const file = join(dir, "m.onnx");
  writeFileSync(file, "first version of the model");
  const fp = fingerprint(file);
  // Within the 1-10 ms that a kernel stamping files from a coarse clock gives one ctime:
  // recorded as the first write's identity, it would still match after the second.
  await Bun.sleep(2);
  writeFileSync(file, "other version of the model");
  const recorded = await fp;
  expect(recorded.statIdentity).toBe(await statIdentity(file));
  expect(recorded.sha256).toBe(createHash("sha256").update("other version of the model").digest("hex"));
  rmSync(dir, { recursive: true, force: true });
});
