import type { Context, MiddlewareHandler } from "hono";
import { bearerToken, holdsRole, inferenceCaller, refusal, type Principal, type Role, type TokenVerifier } from "../auth";
import type { Config } from "../config";
import type { AppEnv } from "./env";

/** Who calls, for the handlers and for every log line of the request. */
function enter(c: Context<AppEnv>, principal: Principal): void {
  c.set("principal", principal);
  if (!principal.anonymous) c.set("log", c.get("log").child({ sub: principal.sub }));
}

/** Every request under the mount needs a valid token. */
export function authenticate(verify: TokenVerifier): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    enter(c, await verify(bearerToken(c.req.header("authorization"))));
    await next();
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

/** Inference, metadata and readiness: the rule gRPC applies too (see inferenceCaller). */
export function inferenceAccess(auth: Config["auth"], verify: TokenVerifier): MiddlewareHandler<AppEnv>[] {
  return [
    async (c, next) => {
      enter(c, await inferenceCaller(c.req.header("authorization"), auth, verify));
      await next();
    },
  ];
}
