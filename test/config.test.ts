import { expect, test } from "bun:test";
import { ConfigError, flagToEnvName, loadConfig } from "../src/config";

test("defaults need no configuration", () => {
  const c = loadConfig({});
  expect(c.port).toBe(8080);
  expect(c.host).toBe("127.0.0.1");
  expect(c.auth.source.kind).toBe("generate");
  expect(c.auth.adminRole).toBe("admin");
  expect(c.modelDir).toBe(`${c.dataDir}/models`);
});

test.each([
  [{ MODELD_PORT: "99999" }, "MODELD_PORT"],
  [{ MODELD_JWT_SECRET: "short" }, "MODELD_JWT_SECRET"],
  [{ MODELD_POLL_MS: "soon" }, "MODELD_POLL_MS"],
  [{ MODELD_EXECUTION_PROVIDERS: "tpu" }, "MODELD_EXECUTION_PROVIDERS"],
  [{ MODELD_JWKS_URL: "not a url" }, "MODELD_JWKS_URL"],
  [{ MODELD_PROT: "8080" }, "MODELD_PROT"],
  [{ MODELD_JWT_SECRET: "x".repeat(32), MODELD_JWKS_FILE: "/k.json" }, "MODELD_JWKS_FILE"],
  [{ MODELD_SPIN_US: "20000" }, "MODELD_SPIN_US"],
])("bad config %p names %s", (env, name) => {
  expect(() => loadConfig(env)).toThrow(ConfigError);
  expect(() => loadConfig(env)).toThrow(name);
});

test("systemd's STATE_DIRECTORY is the default data dir", () => {
  expect(loadConfig({ STATE_DIRECTORY: "/var/lib/modeld" }).dataDir).toBe("/var/lib/modeld");
});

test("every setting has a flag", () => {
  expect(flagToEnvName("--load-timeout-ms")).toBe("MODELD_LOAD_TIMEOUT_MS");
  expect(flagToEnvName("--nope")).toBeUndefined();
});
