// What a start asks of its data dir. One server per data dir: a second one would
// take the first one's sessions for gone (recovery at start resets every model
// that claims one) and run its jobs. And a dir it can write, said plainly if not.
import { afterAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startBinary } from "./fixtures/binary";
import { cleanup, client, startTestService, testEnv } from "./helpers";

const t = testEnv();
afterAll(() => cleanup(t));
const refusal = `another modeld is serving from ${t.dataDir} (it holds ${join(t.dataDir, "modeld.lock")})`;

test("a second start on a data dir in use is refused, and the first one serves on; once it stopped, a start succeeds", async () => {
  const first = await startTestService(t);
  await expect(startTestService(t)).rejects.toThrow(refusal);
  const api = await client(first);
  expect((await api.json("GET", "/api/v1/models")).status).toBe(200);
  expect((await api.call("GET", "/v2/health/ready")).status).toBe(200);
  await first.close();
  const second = await startTestService(t);
  await second.close();
});

test("a server killed with SIGKILL leaves no lock behind: the kernel drops it with the process", async () => {
  const repo = join(import.meta.dir, "..");
  const proc = await startBinary([process.execPath, join(repo, "src/main.ts"), "serve"], t.env, repo);
  await expect(startTestService(t)).rejects.toThrow(refusal);
  await proc.stop("SIGKILL");
  const next = await startTestService(t);
  await next.close();
});

test("a data dir that cannot be written stops the start with that reason, not SQLite's \"unable to open database file\"", async () => {
  const file = join(t.root, "not-a-dir");
  writeFileSync(file, "");
  const config = testEnv({ MODELD_DATA_DIR: join(file, "data") });
  await expect(startTestService(config)).rejects.toThrow(`the data dir ${join(file, "data")} (MODELD_DATA_DIR) must be a writable directory: ENOTDIR`);
  cleanup(config);
});

test("a model dir that is not a folder stops the start with that reason, and the next start on the data dir is not refused", async () => {
  const config = testEnv();
  const file = join(config.root, "models-file");
  writeFileSync(file, "");
  const bad = { ...config, env: { ...config.env, MODELD_MODEL_DIR: file } };
  await expect(startTestService(bad)).rejects.toThrow(`the model dir ${file} (MODELD_MODEL_DIR) must be a directory: EEXIST`);
  // The failed start let go of the data dir's lock and database.
  await (await startTestService(config)).close();
  cleanup(config);
});
