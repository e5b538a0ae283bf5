import { describe, expect, test } from "bun:test";
import { affineModel } from "../fixtures/onnx-builder";
import { token, useService, writeModel } from "../helpers";

const f = useService({}, (t) => void writeModel(t.modelDir, "m.onnx", affineModel()));

describe("admin auth", () => {
  test("no token: 401 with WWW-Authenticate: Bearer", async () => {
    const { status, body, res } = await f.api.json("POST", "/api/v1/models/m/load", { token: null });
    expect(status).toBe(401);
    expect(res.headers.get("www-authenticate")).toStartWith("Bearer");
    expect(body.error).toMatchObject({ code: "UNAUTHORIZED" });
    expect(body.error.requestId).toBe(res.headers.get("x-request-id")!);
  });

  test("reads need a token too", async () => {
    expect((await f.api.json("GET", "/api/v1/models", { token: null })).status).toBe(401);
    expect((await f.api.json("GET", "/api/v1/jobs", { token: null })).status).toBe(401);
  });

  test("garbage, wrong-key, expired and exp-less tokens: 401", async () => {
    const cases = {
      garbage: "not.a.jwt",
      wrongKey: await token({ role: "admin" }, { secret: "another-secret-that-is-32-bytes-long!!" }),
      expired: await token({ role: "admin" }, { exp: Math.floor(Date.now() / 1000) - 60 }),
      noExp: await token({ role: "admin" }, { exp: null }),
    };
    for (const [name, tok] of Object.entries(cases)) {
      const { status, body } = await f.api.json("POST", "/api/v1/models/m/load", { token: tok });
      expect({ name, status, code: body.error.code }).toEqual({ name, status: 401, code: "UNAUTHORIZED" });
    }
    const expired = await f.api.json("GET", "/api/v1/models", { token: cases.expired });
    expect(expired.body.error.message).toContain("expired");
  });

  test("a valid token without the admin role: 403 on changes, 200 on reads", async () => {
    const infer = await token({ role: "infer" });
    const { status, body } = await f.api.json("POST", "/api/v1/models/m/load", { token: infer });
    expect(status).toBe(403);
    expect(body.error.code).toBe("FORBIDDEN");
    expect((await f.api.json("POST", "/api/v1/models/unload", { token: infer })).status).toBe(403);
    expect((await f.api.json("DELETE", "/api/v1/models/m", { token: infer })).status).toBe(403);
    expect((await f.api.json("GET", "/api/v1/models", { token: infer })).status).toBe(200);
  });

  test("admin may come from role, roles or scope", async () => {
    for (const claims of [{ role: "admin" }, { roles: ["reader", "admin"] }, { scope: "openid admin" }]) {
      const { status } = await f.api.json("POST", "/api/v1/models", { token: await token(claims), body: { id: "x", path: "nope.onnx" } });
      expect({ claims, status }).toEqual({ claims, status: 400 }); // got past auth to validation
    }
  });

  test("health, openapi and docs are open", async () => {
    for (const path of ["/health", "/openapi.json", "/docs", "/docs/scalar.js"]) {
      expect({ path, status: (await f.api.call("GET", path, { token: null })).status }).toEqual({ path, status: 200 });
    }
  });
});

describe("MODELD_ROLE_CLAIM", () => {
  const register = async (fx: typeof f, claims: Record<string, unknown>) =>
    (await fx.api.json("POST", "/api/v1/models", { token: await token(claims), body: { id: "x", path: "nope.onnx" } })).status;

  describe("a dotted path into nested claims, as Keycloak writes them", () => {
    const kc = useService({ MODELD_ROLE_CLAIM: "resource_access.modeld.roles" });
    test("the roles at the path count; the same names elsewhere in the token do not", async () => {
      expect(await register(kc, { resource_access: { modeld: { roles: ["admin"] }, other: { roles: ["viewer"] } } })).toBe(400); // past auth
      expect(await register(kc, { resource_access: { other: { roles: ["admin"] } } })).toBe(403);
      expect(await register(kc, { resource_access: { modeld: "admin" } })).toBe(403);
    });
  });

  describe("a claim whose own name has dots, as Auth0 namespaces them", () => {
    const a0 = useService({ MODELD_ROLE_CLAIM: "https://modeld.example/roles" });
    test("is read by its whole name", async () => {
      expect(await register(a0, { "https://modeld.example/roles": ["admin"] })).toBe(400);
      expect(await register(a0, { "https://modeld.example/roles": ["infer"] })).toBe(403);
    });
  });
});
