// The stat identity recorded with a digest must be able to tell any later change.
import { expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { currentIdentity, fingerprint } from "../../src/lifecycle/model-files";
import { buildModel } from "../fixtures/onnx-builder";
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
  expect(recorded.statIdentity).toBe(await currentIdentity(file, recorded.statIdentity));
  expect(recorded.sha256).toBe(createHash("sha256").update("other version of the model").digest("hex"));
  rmSync(dir, { recursive: true, force: true });
});

test("a model's external data files are part of its fingerprint: a missing one counts as absent, and its arrival is a change", async () => {
  const dir = tempDir();
  const file = join(dir, "m.onnx");
  const model = buildModel({
    inputs: [{ name: "x", type: "float32", shape: [4] }],
    outputs: [{ name: "y", type: "float32", shape: [4] }],
    initializers: ["a.bin", "b.bin", "a.bin", "../escape.bin"].map((location, i) => ({ name: `w${i}`, type: "float32" as const, dims: [4], external: { location, offset: 0, length: 16 } })),
    nodes: [{ op: "Identity", inputs: ["x"], outputs: ["y"] }],
  });
  writeFileSync(file, model);
  writeFileSync(join(dir, "a.bin"), "sixteen bytes!!!");
  const fp = await fingerprint(file);
  // Each file once, in the order named; one the model may not read is not the version's.
  expect(fp.statIdentity.split("\n").map((l) => l.split(" ").slice(1).join(" "))).toEqual(["", "a.bin", "b.bin"]);
  expect(fp.statIdentity.split("\n")[2]).toBe("- b.bin");
  expect(fp.sizeBytes).toBe(model.byteLength + 16);
  expect(fp.sha256).toBe(createHash("sha256").update(model).update("sixteen bytes!!!").digest("hex"));
  expect(await currentIdentity(file, fp.statIdentity)).toBe(fp.statIdentity);
  writeFileSync(join(dir, "b.bin"), "arrived");
  expect(await currentIdentity(file, fp.statIdentity)).not.toBe(fp.statIdentity);
  rmSync(dir, { recursive: true, force: true });
});
