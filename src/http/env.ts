import type { Principal } from "../auth";
import type { Logger } from "../log";

export type AppEnv = {
  Variables: {
    requestId: string;
    principal: Principal;
    log: Logger;
  };
};
