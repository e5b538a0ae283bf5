// Hostile tokens, each answered 401 (never 500), against the three key sources.
import { afterAll, describe, expect, setSystemTime, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey } from "jose";
import { SECRET, token, until, useService, type Client } from "../helpers";

const b64 = (o: object | string) => Buffer.from(typeof o === "string" ? o : JSON.stringify(o)).toString("base64url");
const now = () => Math.floor(Date.now() / 1000);

async function expect401(api: Client, tok: string, label: string) {
  const res = await api.json("GET", "/api/v1/models", { token: tok });
  expect({ label, status: res.status, code: res.body?.error?.code }).toEqual({ label, status: 401, code: "UNAUTHORIZED" });
  expect(res.res.headers.get("www-authenticate")).toStartWith("Bearer");
}

describe("HS256 secret", () => {
  const f = useService({ MODELD_JWT_ISSUER: "https://issuer.test", MODELD_JWT_AUDIENCE: "modeld" });

  const sign = (claims: Record<string, unknown>, opts: { exp?: number | null; nbf?: number } = {}) => {
    let j = new SignJWT({ role: "admin", ...claims }).setProtectedHeader({ alg: "HS256" }).setSubject("attacker").setIssuedAt();
    if (opts.exp !== null) j = j.setExpirationTime(opts.exp ?? now() + 600);
    if (opts.nbf) j = j.setNotBefore(opts.nbf);
    return j.sign(new TextEncoder().encode(SECRET));
  };
  const good = () => sign({ iss: "https://issuer.test", aud: "modeld" });

  test("a well-formed token passes (the control)", async () => {
    expect((await f.api.json("GET", "/api/v1/models", { token: await good() })).status).toBe(200);
  });

  test("alg none", async () => {
    await expect401(f.api, `${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: "x", role: "admin", exp: now() + 600, iss: "https://issuer.test", aud: "modeld" })}.`, "none");
  });
  test("expired, and nbf in the future", async () => {
    await expect401(f.api, await sign({ iss: "https://issuer.test", aud: "modeld" }, { exp: now() - 60 }), "expired");
    await expect401(f.api, await sign({ iss: "https://issuer.test", aud: "modeld" }, { nbf: now() + 3600 }), "nbf");
  });
  test("wrong issuer or audience", async () => {
    await expect401(f.api, await sign({ iss: "https://evil.test", aud: "modeld" }), "iss");
    await expect401(f.api, await sign({ iss: "https://issuer.test", aud: "other" }), "aud");
  });
  test("missing exp", async () => {
    await expect401(f.api, await sign({ iss: "https://issuer.test", aud: "modeld" }, { exp: null }), "no exp");
  });
  test("tampered payload and truncated signature", async () => {
    const [h, p, s] = (await good()).split(".");
    const payload = JSON.parse(Buffer.from(p!, "base64url").toString());
    await expect401(f.api, `${h}.${b64({ ...payload, sub: "root" })}.${s}`, "tampered");
    await expect401(f.api, `${h}.${p}.${s!.slice(0, 10)}`, "truncated");
  });
  test("a 100 KB token", async () => {
    await expect401(f.api, await sign({ iss: "https://issuer.test", aud: "modeld", pad: "x".repeat(100 * 1024) }), "huge");
  });
  test("garbage of every shape", async () => {
    for (const g of ["", ".", "..", "a.b.c", "ä.ö.ü", "eyJ.eyJ.sig", "Bearer", "x".repeat(5000)]) await expect401(f.api, g, `garbage ${g.slice(0, 12)}`);
    const res = await f.api.json("GET", "/api/v1/models", { headers: { authorization: "Basic dXNlcjpwYXNz" }, token: null });
    expect(res.status).toBe(401);
  });
});

describe("RS256 public key", () => {
  let privateKey: CryptoKey;
  let pem: string;
  const f = useService({}, async (t) => {
    const pair = await generateKeyPair("RS256", { extractable: true });
    privateKey = pair.privateKey;
    pem = await exportSPKI(pair.publicKey);
    Object.assign(t.env, { MODELD_JWT_SECRET: "", MODELD_JWT_PUBLIC_KEY: pem, MODELD_JWT_ALG: "RS256" });
  });

  test("an RS256 token passes (the control)", async () => {
    const tok = await new SignJWT({ role: "admin" }).setProtectedHeader({ alg: "RS256" }).setExpirationTime("5m").setSubject("ops").sign(privateKey);
    expect((await f.api.json("GET", "/api/v1/models", { token: tok })).status).toBe(200);
  });

  test("HS256 signed with the public key (algorithm confusion)", async () => {
    const tok = await new SignJWT({ role: "admin" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime("5m").sign(new TextEncoder().encode(pem));
    await expect401(f.api, tok, "confusion");
  });
});

describe("JWKS file", () => {
  let privateKey: CryptoKey;
  const f = useService({}, async (t) => {
    const pair = await generateKeyPair("ES256", { extractable: true });
    privateKey = pair.privateKey;
    const jwks = join(t.root, "jwks.json");
    writeFileSync(jwks, JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "ES256", use: "sig" }] }));
    Object.assign(t.env, { MODELD_JWT_SECRET: "", MODELD_JWKS_FILE: jwks });
  });

  test("a token with a known kid passes; an unknown kid is 401", async () => {
    const signWith = (kid: string) => new SignJWT({ role: "admin" }).setProtectedHeader({ alg: "ES256", kid }).setExpirationTime("5m").sign(privateKey);
    expect((await f.api.json("GET", "/api/v1/models", { token: await signWith("k1") })).status).toBe(200);
    await expect401(f.api, await signWith("k-unknown"), "unknown kid");
    await expect401(f.api, await token(), "HS256 against a JWKS");
  });
});

describe("JWKS URL", () => {
  let privateKey: CryptoKey;
  let jwks = "";
  // What the identity provider's endpoint does: serve the key set, fail, or answer garbage.
  let mode: "keys" | "error" | "garbage" = "error";
  let fetches = 0;
  const idp = Bun.serve({
    port: 0,
    fetch: () => (fetches++, mode === "keys" ? new Response(jwks, { headers: { "content-type": "application/json" } }) : mode === "garbage" ? new Response("<html>login</html>") : new Response("down", { status: 502 })),
  });
  afterAll(() => idp.stop(true));
  const f = useService({}, async (t) => {
    const pair = await generateKeyPair("ES256", { extractable: true });
    privateKey = pair.privateKey;
    jwks = JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "ES256", use: "sig" }] });
    Object.assign(t.env, { MODELD_JWT_SECRET: "", MODELD_JWKS_URL: `http://127.0.0.1:${idp.port}/jwks.json` });
  });
  const signed = (sub: string, kid = "k1") => new SignJWT({ role: "admin" }).setProtectedHeader({ alg: "ES256", kid }).setSubject(sub).setExpirationTime("5m").sign(privateKey);

  test("a key set that cannot be fetched is 503 AUTH_UNAVAILABLE naming it, not a 401 that blames the token; it serves once the endpoint does", async () => {
    for (const [m, why] of [["error", "Expected 200 OK"], ["garbage", "as JSON"]] as const) {
      mode = m;
      await Bun.sleep(1100); // a failed fetch is not tried again for a second
      const res = await f.api.json("GET", "/api/v1/models", { token: await signed(`while-${m}`) });
      expect({ status: res.status, code: res.body.error.code }).toEqual({ status: 503, code: "AUTH_UNAVAILABLE" });
      expect(res.body.error.message).toContain(`http://127.0.0.1:${idp.port}/jwks.json`);
      expect(res.body.error.message).toContain(why);
      const v2 = await f.api.json("GET", "/v2/models/none", { token: await signed(`v2-${m}`) });
      expect(v2.status).toBe(503);
    }
    mode = "keys";
    await Bun.sleep(1100);
    expect((await f.api.json("GET", "/api/v1/models", { token: await signed("after") })).status).toBe(200);
    // Fetched once, the key set is kept: an outage after that does not stop new tokens.
    mode = "error";
    expect((await f.api.json("GET", "/api/v1/models", { token: await signed("during-a-later-outage") })).status).toBe(200);
    await expect401(f.api, await token(), "HS256 against a JWKS");
  });

  test("past the 10 minutes a fetched key set is fresh for, an outage keeps it in use, and requests do not each wait for a fetch", async () => {
    mode = "keys";
    expect((await f.api.json("GET", "/api/v1/models", { token: await signed("fetched") })).status).toBe(200);
    mode = "error";
    try {
      setSystemTime(new Date(Date.now() + 11 * 60_000));
      const before = fetches;
      expect((await f.api.json("GET", "/api/v1/models", { token: await signed("stale-1") })).status).toBe(200);
      for (let i = 2; i <= 5; i++) expect((await f.api.json("GET", "/api/v1/models", { token: await signed(`stale-${i}`) })).status).toBe(200);
      expect(fetches - before).toBe(1);
      // A key the kept set does not have may be one the provider added meanwhile: not the token's fault.
      expect((await f.api.json("GET", "/api/v1/models", { token: await signed("new-key", "k2") })).body.error.code).toBe("AUTH_UNAVAILABLE");
      // A second on, a request goes on with the kept set while a refresh runs beside it; once the
      // provider is back, that refresh ends the outage: a key it does not list is the token's fault again.
      await Bun.sleep(1100);
      mode = "keys";
      expect((await f.api.json("GET", "/api/v1/models", { token: await signed("stale-6") })).status).toBe(200);
      expect(await until(async () => fetches - before, (n) => n === 2, 3_000)).toBe(2);
      expect(await until(async () => (await f.api.json("GET", "/api/v1/models", { token: await signed("new-key-again", "k2") })).status, (s) => s === 401, 3_000)).toBe(401);
    } finally {
      setSystemTime();
    }
  });
});
