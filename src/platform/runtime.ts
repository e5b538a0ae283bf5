// Which JavaScript runtime modeld is on. Only src/platform/ asks.
export type RuntimeName = "bun" | "deno" | "node";

const g = globalThis as { Bun?: unknown; Deno?: unknown };

export const runtimeName: RuntimeName = g.Bun !== undefined ? "bun" : g.Deno !== undefined ? "deno" : "node";

/** What `Deno` offers that modeld uses; typed here so no other file mentions it. */
export interface DenoApi {
  serve(
    opts: { hostname: string; port: number; onListen?: (addr: { port: number }) => void; signal?: AbortSignal },
    handler: (req: Request, info: { remoteAddr: { hostname: string } }) => Response | Promise<Response>,
  ): { addr: { port: number }; finished: Promise<void>; shutdown(): Promise<void> };
  dlopen(path: string, symbols: Record<string, { parameters: string[]; result: string }>): unknown;
}

export const deno = (): DenoApi => g.Deno as DenoApi;
