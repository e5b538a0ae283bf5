// The HTTP listener of each runtime, with one graceful-shutdown contract:
// stop(false) stops accepting and resolves when in-flight requests are done;
// stop(true) drops what is left.
import { deno, runtimeName } from "./runtime";

/** What the listener hands the app with every request (Hono's `c.env`). */
export interface ConnEnv {
  readonly remoteAddress?: string;
  /**
   * Called once the request is read, where what follows is modeld's own work (a
   * load a Triton client waits for, an inference), which may outlast the idle
   * timeout that closes quiet connections and stalled uploads: Bun ended such a
   * request at that timeout with an empty reply, while the work went on. Node and
   * Deno do not time a handler out, so they leave it undefined.
   */
  readonly awaitingWork?: () => void;
}

export type FetchHandler = (req: Request, env: ConnEnv) => Response | Promise<Response>;

export interface Listener {
  port: number;
  stop(force: boolean): Promise<void>;
}

/**
 * By HTTP/1.1's framing, a request with neither Content-Length nor Transfer-Encoding
 * has no body (RFC 9112, 6.3), which is how `curl -X POST -H "Content-Type:
 * application/json"` sends one. Bun hands it over with no body; Node's adapter and
 * Deno with an empty stream, which the app cannot tell from a body it has not read,
 * so the same curl got 400 "not valid JSON" there and 202 on Bun. Decided on the
 * method and headers alone: asking Node's adapter for `req.body` builds the whole
 * Request it otherwise skips, and cut tiny-model throughput on Node to a third.
 */
function framedBody(req: Request): Request {
  if (req.method === "GET" || req.method === "HEAD" || req.headers.has("content-length") || req.headers.has("transfer-encoding")) return req;
  return new Request(req.url, { method: req.method, headers: req.headers, signal: req.signal });
}

/** Seconds a connection may stay quiet: between requests, or while a request is read. */
const IDLE_TIMEOUT_S = 120;

/** `idleTimeoutS` is Bun's only (IDLE_TIMEOUT_S unless a test shortens it). */
export async function listen(opts: { hostname: string; port: number; fetch: FetchHandler; idleTimeoutS?: number }): Promise<Listener> {
  if (runtimeName === "bun") {
    const idle = opts.idleTimeoutS ?? IDLE_TIMEOUT_S;
    const server = Bun.serve({
      hostname: opts.hostname,
      port: opts.port,
      idleTimeout: idle,
      fetch: (req, srv) => {
        let working = false;
        const res = opts.fetch(req, {
          // Looked up only when asked (the audit log): most requests never need it.
          get remoteAddress() {
            return srv.requestIP(req)?.address;
          },
          awaitingWork: () => {
            working = true;
            srv.timeout(req, 0);
          },
        });
        // Once the answer is ready, the connection is guarded again.
        const guard = (r: Response) => {
          if (working) srv.timeout(req, idle);
          return r;
        };
        return res instanceof Promise ? res.then(guard) : guard(res);
      },
    });
    return { port: server.port!, stop: async (force) => void (await server.stop(force)) };
  }
  if (runtimeName === "deno") {
    const listening = Promise.withResolvers<number>();
    const server = deno().serve(
      { hostname: opts.hostname, port: opts.port, onListen: ({ port }) => listening.resolve(port) },
      (req, info) => opts.fetch(framedBody(req), { remoteAddress: info.remoteAddr.hostname }),
    );
    const port = await listening.promise;
    // Deno's shutdown() is the graceful stop; nothing is left to drop after it.
    return { port, stop: async () => void (await server.shutdown()) };
  }
  const { serve } = await import("@hono/node-server");
  type Incoming = { incoming?: { socket?: { remoteAddress?: string } } };
  const server = serve({
    hostname: opts.hostname,
    port: opts.port,
    fetch: (req: Request, env: Incoming) => opts.fetch(framedBody(req), { remoteAddress: env.incoming?.socket?.remoteAddress }),
  }) as import("node:http").Server;
  await new Promise<void>((resolve, reject) => (server.listening ? resolve() : server.once("listening", resolve).once("error", reject)));
  const port = (server.address() as import("node:net").AddressInfo).port;
  return {
    port,
    stop: (force) =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        if (force) server.closeAllConnections();
        else server.closeIdleConnections();
      }),
  };
}
