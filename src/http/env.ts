import type { Principal } from "../auth";
import type { Logger } from "../log";

/** The error body a route's callers expect; set by the policy router it is registered on. */
export type ErrorShape = "api" | "protocol";

export type AppEnv = {
  Variables: {
    requestId: string;
    principal: Principal;
    log: Logger;
    errorShape: ErrorShape;
  };
};
