import type { MiddlewareHandler } from "hono";
import { ANONYMOUS, bearerToken, holdsRole, refusal, type Principal, type Role, type TokenVerifier } from "../auth";
import type { Config } from "../config";
import type { AppEnv } from "./env";

/** Every request under the mount needs a valid token. */
export function authenticate(verify: TokenVerifier): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const principal = await verify(bearerToken(c.req.header("authorization")));
    c.set("principal", principal);
    c.set("log", c.get("log").child({ sub: principal.sub }));
    await next();
  };
}

/** Like authenticate, but lets anonymous requests through as `anonymous` when `open` is true. */
export function authenticateUnless(open: boolean, verify: TokenVerifier): MiddlewareHandler<AppEnv> {
  const strict = authenticate(verify);
  return async (c, next) => {
    if (open && !c.req.header("authorization")) {
      c.set("principal", ANONYMOUS);
      return next();
    }
    return strict(c, next);
  };
}

export const isAdmin = (p: Principal, auth: Config["auth"]) => holdsRole(p, auth, ["admin"]);

/** 403 unless the principal holds one of the roles (admin always passes); 401 for anonymous callers. */
export function requireRole(auth: Config["auth"], ...roles: Role[]): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const refused = refusal(c.get("principal"), auth, roles);
    if (refused) throw refused;
    await next();
  };
}

/** Inference needs the infer (or admin) role, unless MODELD_PUBLIC_INFERENCE opens it. */
export function inferenceAccess(auth: Config["auth"], verify: TokenVerifier): MiddlewareHandler<AppEnv>[] {
  const open = authenticateUnless(auth.publicInference, verify);
  return auth.publicInference ? [open] : [open, requireRole(auth, "infer")];
}
