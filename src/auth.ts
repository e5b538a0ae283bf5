// Token verification and minting with jose. Algorithms are pinned per key
// source so a token can never choose how it is checked (no `none`, no HS256
// signed with a public key).
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  importSPKI,
  jwtVerify,
  SignJWT,
  type JWTPayload,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
} from "jose";
import { monotonicMs } from "./clock";
import type { AuthSource, Config } from "./config";
import { AppError } from "./errors";
import { repeatedFailure, type Logger } from "./log";

export interface Principal {
  sub: string;
  roles: string[];
  /** No token was sent and the route allows that (MODELD_PUBLIC_INFERENCE). */
  anonymous?: boolean;
}

const ASYMMETRIC = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];
/** Larger tokens are refused before any parsing. */
export const MAX_TOKEN_BYTES = 8192;
const CLOCK_TOLERANCE_S = 5;

/** Reads the generated secret, creating it (mode 0600) on first use. */
export function ensureSecret(path: string): string {
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeFileSync(path, randomBytes(32).toString("hex") + "\n", { mode: 0o600, flag: "wx" });
  }
  chmodSync(path, 0o600);
  return readFileSync(path, "utf8").trim();
}

export function resolveAuthSource(config: Config): AuthSource {
  const s = config.auth.source;
  return s.kind === "generate" ? { kind: "secret", secret: ensureSecret(s.path), generated: true } : s;
}

/** After a failed fetch, another is tried no sooner than this: requests do not each wait for one (up to 5 s when the endpoint hangs). */
const REFETCH_AFTER_FAILURE_MS = 1_000;

/**
 * The identity provider's key set, as jose fetches and refreshes it (every 10 minutes,
 * or for a key it does not know), made to survive the provider's outages: once a set
 * was fetched, a failed refresh keeps verifying with it, and refreshes are tried again
 * in the background, rather than every token failing after its 10 minutes. Without
 * any set, or for a key not in it, a failed fetch is this server's trouble, not the
 * token's: 503 AUTH_UNAVAILABLE, so a client retries with the token instead of
 * discarding it as a 401 would tell it to.
 */
function remoteKeySet(url: string, log?: Logger): JWTVerifyGetKey {
  const remote = createRemoteJWKSet(new URL(url));
  const fetching = log && repeatedFailure(log, `fetching the key set at ${url} (MODELD_JWKS_URL)`, `at most once a second while tokens need it`);
  let failure: { at: number; error: AppError } | undefined;
  let refreshing: Promise<void> | undefined;
  let last: { jwks: JSONWebKeySet; keys: JWTVerifyGetKey } | undefined;

  const failed = (err: unknown): AppError => {
    const error = new AppError("AUTH_UNAVAILABLE", `the key set at ${url} (MODELD_JWKS_URL) could not be fetched: ${(err as Error).message}`, undefined, { "Retry-After": "1" });
    failure = { at: monotonicMs(), error };
    fetching?.failed(err);
    return error;
  };
  const fetched = () => {
    failure = undefined;
    fetching?.succeeded();
  };
  /** The key from the set fetched last, when there is one. */
  const known = async (header: Parameters<JWTVerifyGetKey>[0], token: Parameters<JWTVerifyGetKey>[1], error: AppError) => {
    const jwks = remote.jwks();
    if (!jwks) throw error;
    if (last?.jwks !== jwks) last = { jwks, keys: createLocalJWKSet(jwks) };
    try {
      return await last.keys(header, token);
    } catch (err) {
      // A key the last set does not have may be one the provider added since.
      throw (err as { code?: string }).code === "ERR_JWKS_NO_MATCHING_KEY" ? error : err;
    }
  };

  return async (header, token) => {
    if (failure) {
      const due = monotonicMs() - failure.at >= REFETCH_AFTER_FAILURE_MS;
      if (remote.jwks()) {
        refreshing ??= due ? remote.reload().then(fetched, (err) => void failed(err)).finally(() => (refreshing = undefined)) : undefined;
        return known(header, token, failure.error);
      }
      if (!due) throw failure.error;
    }
    try {
      const key = await remote(header, token);
      fetched();
      return key;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === "ERR_JWKS_NO_MATCHING_KEY" || code === "ERR_JWKS_MULTIPLE_MATCHING_KEYS") throw err;
      return known(header, token, failed(err));
    }
  };
}

async function keyFor(source: AuthSource, log?: Logger): Promise<{ key: Uint8Array | CryptoKey | JWTVerifyGetKey; algorithms: string[] }> {
  switch (source.kind) {
    case "secret":
      return { key: new TextEncoder().encode(source.secret), algorithms: ["HS256"] };
    case "jwks-url":
      return { key: remoteKeySet(source.url, log), algorithms: ASYMMETRIC };
    case "jwks-file":
      return { key: createLocalJWKSet(JSON.parse(readFileSync(source.path, "utf8"))), algorithms: ASYMMETRIC };
    case "public-key": {
      const pem = source.pem.startsWith("-----BEGIN") ? source.pem : readFileSync(source.pem, "utf8");
      return { key: await importSPKI(pem, source.alg), algorithms: [source.alg] };
    }
  }
}

/**
 * The claim that holds roles: a top-level claim of that name first (Auth0's
 * namespaced claims, such as "https://example.com/roles", have dots of their own),
 * else a dotted path into nested objects, where Keycloak keeps them
 * (`realm_access.roles`, `resource_access.<client>.roles`). Looked up as a name
 * only, `realm_access.roles` found nothing and every Keycloak token was 403.
 */
function claimAt(payload: JWTPayload, name: string): unknown {
  if (Object.hasOwn(payload, name)) return payload[name];
  let value: unknown = payload;
  for (const key of name.split(".")) {
    if (typeof value !== "object" || value === null || !Object.hasOwn(value, key)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

export function rolesOf(payload: JWTPayload, roleClaim: string): string[] {
  const roles = new Set<string>();
  const add = (v: unknown) => {
    if (typeof v === "string") roles.add(v);
    if (Array.isArray(v)) v.filter((x) => typeof x === "string").forEach((x) => roles.add(x));
  };
  add(claimAt(payload, roleClaim));
  add(payload.roles);
  if (typeof payload.scope === "string") payload.scope.split(" ").forEach((s) => s && roles.add(s));
  return [...roles];
}

export type TokenVerifier = (token: string) => Promise<Principal>;

/** Who calls without a token where inference is open (MODELD_PUBLIC_INFERENCE). */
export const ANONYMOUS: Principal = Object.freeze({ sub: "anonymous", roles: [], anonymous: true }) as Principal;

/** The token of an `Authorization: Bearer …` header (HTTP) or metadata entry (gRPC). */
export function bearerToken(header: string | undefined): string {
  if (!header) throw new AppError("UNAUTHORIZED", "missing Authorization: Bearer token");
  const m = /^Bearer\s+(\S+)$/i.exec(header);
  if (!m) throw new AppError("UNAUTHORIZED", "Authorization header must be 'Bearer <token>'");
  return m[1]!;
}

export type Role = "admin" | "infer" | "metrics";

const roleNames = (auth: Config["auth"], roles: Role[]) => roles.map((r) => ({ admin: auth.adminRole, infer: auth.inferRole, metrics: auth.metricsRole })[r]);

/** Whether the principal holds one of the roles, by their configured names; admins hold every role. */
export function holdsRole(p: Principal, auth: Config["auth"], roles: Role[]): boolean {
  if (p.roles.includes(auth.adminRole)) return true;
  return roleNames(auth, roles).some((n) => p.roles.includes(n));
}

/** Why a principal may not go on, or undefined when it may: the same rule for HTTP and gRPC. */
export function refusal(p: Principal | undefined, auth: Config["auth"], roles: Role[]): AppError | undefined {
  if (!p || p.anonymous) return new AppError("UNAUTHORIZED", "missing Authorization: Bearer token");
  if (holdsRole(p, auth, roles)) return undefined;
  return new AppError("FORBIDDEN", `requires the ${roleNames(auth, roles).join(" or ")} role`);
}

/**
 * Who is calling inference, metadata or readiness, over HTTP or gRPC alike:
 * the infer (or admin) role, or anyone under MODELD_PUBLIC_INFERENCE. A token
 * sent there must still be valid, and then names the caller whatever its
 * roles: it can do no more than an anonymous caller could.
 */
export async function inferenceCaller(header: string | undefined, auth: Config["auth"], verify: TokenVerifier): Promise<Principal> {
  if (!header && auth.publicInference) return ANONYMOUS;
  const principal = await verify(bearerToken(header));
  const refused = auth.publicInference ? undefined : refusal(principal, auth, ["infer"]);
  if (refused) throw refused;
  return principal;
}

/** Verified tokens are remembered until they expire: a signature check costs more than the rest of a small inference. */
const VERIFIED_CACHE_SIZE = 10_000;

export async function createTokenVerifier(source: AuthSource, auth: Config["auth"], log?: Logger): Promise<TokenVerifier> {
  const { key, algorithms } = await keyFor(source, log);
  const verified = new Map<string, { principal: Principal; expiresAtMs: number }>();
  return async (token) => {
    if (token.length > MAX_TOKEN_BYTES) throw new AppError("UNAUTHORIZED", "token is too large");
    const hit = verified.get(token);
    if (hit && hit.expiresAtMs > Date.now()) return hit.principal;
    if (hit) verified.delete(token);
    try {
      const { payload } = await jwtVerify(token, key as Uint8Array, {
        algorithms,
        issuer: auth.issuer,
        audience: auth.audience,
        requiredClaims: ["exp"],
        clockTolerance: CLOCK_TOLERANCE_S,
      });
      const principal = { sub: typeof payload.sub === "string" ? payload.sub : "unknown", roles: rolesOf(payload, auth.roleClaim) };
      // Remote JWKS keys can rotate; keep those entries for a minute at most.
      const ttlCapMs = source.kind === "jwks-url" ? 60_000 : Infinity;
      if (verified.size >= VERIFIED_CACHE_SIZE) verified.delete(verified.keys().next().value!);
      verified.set(token, { principal, expiresAtMs: Math.min(payload.exp! * 1000, Date.now() + ttlCapMs) });
      return principal;
    } catch (err) {
      if (err instanceof AppError) throw err;
      const code = (err as { code?: string }).code;
      const why =
        code === "ERR_JWT_EXPIRED" ? "token has expired"
        : code === "ERR_JWT_CLAIM_VALIDATION_FAILED" ? `token claim check failed: ${(err as Error).message}`
        : code === "ERR_JWS_SIGNATURE_VERIFICATION_FAILED" ? "token signature is invalid"
        : "token is malformed or not acceptable";
      throw new AppError("UNAUTHORIZED", why);
    }
  };
}

/** Parses "90s", "15m", "1h", "7d". */
export function parseTtl(ttl: string): number {
  const m = /^(\d+)([smhd])$/.exec(ttl);
  if (!m) throw new Error(`--ttl must look like 30s, 15m, 1h or 7d, not ${ttl}`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as "s" | "m" | "h" | "d"];
}

export async function mintToken(
  secret: string,
  claims: { sub: string; role: string; ttlSeconds: number; issuer?: string; audience?: string; roleClaim?: string },
): Promise<string> {
  let jwt = new SignJWT({ [claims.roleClaim ?? "role"]: claims.role })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(claims.sub)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + claims.ttlSeconds);
  if (claims.issuer) jwt = jwt.setIssuer(claims.issuer);
  if (claims.audience) jwt = jwt.setAudience(claims.audience);
  return jwt.sign(new TextEncoder().encode(secret));
}
