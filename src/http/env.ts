import type { Principal } from "../auth";
import type { Logger } from "../log";
import type { ConnEnv } from "../platform/serve";

/** The error body a route's callers expect; set by the policy router it is registered on. */
export type ErrorShape = "api" | "protocol";

export type AppEnv = {
  /** What the listener knows about the connection (src/platform/serve.ts). */
  Bindings: ConnEnv;
  Variables: {
    requestId: string;
    principal: Principal;
    log: Logger;
    errorShape: ErrorShape;
  };
};
