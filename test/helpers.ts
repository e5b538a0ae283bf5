// Shared test wiring: a real service on temp dirs (real SQLite file, real ONNX
// sessions in workers) and real JWTs signed with jose.
import { afterAll, beforeAll } from "bun:test";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { SignJWT } from "jose";
import { loadConfig } from "../src/config";
import type { Job } from "../src/jobs/states";
import { createLogger, silentLogger, type Logger } from "../src/log";
import { startService, type Service } from "../src/server";

export const SECRET = "test-secret-that-is-at-least-32-bytes-long!";

export function tempDir(prefix = "modeld-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface TestEnv {
  root: string;
  dataDir: string;
  modelDir: string;
  env: Record<string, string>;
}

/** Temp data and model dirs plus the environment that points modeld at them. */
export function testEnv(overrides: Record<string, string> = {}, root = tempDir()): TestEnv {
  const dataDir = join(root, "data");
  const modelDir = join(root, "models");
  mkdirSync(modelDir, { recursive: true });
  return {
    root,
    dataDir,
    modelDir,
    env: {
      MODELD_DATA_DIR: dataDir,
      MODELD_MODEL_DIR: modelDir,
      MODELD_CACHE_DIR: join(root, "cache"),
      MODELD_JWT_SECRET: SECRET,
      MODELD_POLL_MS: "200",
      MODELD_RESTORE: "false",
      ...overrides,
    },
  };
}

export function writeModel(modelDir: string, rel: string, bytes: Uint8Array | string): string {
  const p = join(modelDir, rel);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, bytes);
  return p;
}

export async function startTestService(t: TestEnv, log: Logger = process.env.MODELD_TEST_LOG ? createLogger("debug") : silentLogger()): Promise<Service> {
  return startService(loadConfig(t.env), log);
}

export async function token(
  claims: Record<string, unknown> = { role: "admin" },
  opts: { secret?: string; exp?: string | number | null; sub?: string } = {},
): Promise<string> {
  let jwt = new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setSubject(opts.sub ?? "tester").setIssuedAt();
  if (opts.exp !== null) jwt = jwt.setExpirationTime(opts.exp ?? "10m");
  return jwt.sign(new TextEncoder().encode(opts.secret ?? SECRET));
}

export interface Client {
  call(method: string, path: string, opts?: { token?: string | null; body?: unknown; headers?: Record<string, string> }): Promise<Response>;
  json<T = any>(method: string, path: string, opts?: { token?: string | null; body?: unknown; headers?: Record<string, string> }): Promise<{ status: number; body: T; res: Response }>;
  waitJob(id: string, timeoutMs?: number): Promise<Job>;
}

/** Drives the app in-process with app.request(), as an admin unless told otherwise. */
export async function client(service: Service, defaultToken?: string): Promise<Client> {
  const admin = defaultToken ?? (await token());
  const call: Client["call"] = (method, path, opts = {}) => {
    const headers: Record<string, string> = { ...opts.headers };
    const tok = opts.token === undefined ? admin : opts.token;
    if (tok) headers.authorization = `Bearer ${tok}`;
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
      headers["content-type"] ??= "application/json";
    }
    return Promise.resolve(service.app.request(path, { method, headers, body }));
  };
  const json: Client["json"] = async (method, path, opts) => {
    const res = await call(method, path, opts);
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null, res };
  };
  return {
    call,
    json,
    async waitJob(id, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const { body } = await json("GET", `/api/v1/jobs/${id}?wait=5`);
        if (["completed", "failed", "cancelled"].includes(body.state)) return body;
        if (Date.now() > deadline) throw new Error(`job ${id} still ${body.state}`);
      }
    },
  };
}

/** Calls `f` every `stepMs` until `ok` holds of its value or `ms` passed; returns the last value, for the caller to assert on. */
export async function until<T>(f: () => Promise<T>, ok: (v: T) => boolean, ms = 30_000, stepMs = 5): Promise<T> {
  const deadline = performance.now() + ms;
  for (;;) {
    const v = await f();
    if (ok(v) || performance.now() > deadline) return v;
    await Bun.sleep(stepMs);
  }
}

/** JSON text of `1` inside `depth` nested arrays: a body that recursion chokes on. */
export const nestedJsonArray = (depth: number): string => "[".repeat(depth) + "1" + "]".repeat(depth);

export function cleanup(t: TestEnv): void {
  rmSync(t.root, { recursive: true, force: true });
}

export interface ServiceFixture {
  readonly t: TestEnv;
  readonly svc: Service;
  readonly api: Client;
}

/**
 * Starts one service for the enclosing file or describe block (beforeAll) and
 * stops it afterwards (afterAll). `prepare` writes models before the start.
 */
export function useService(env: Record<string, string> = {}, prepare: (t: TestEnv) => void | Promise<void> = () => {}): ServiceFixture {
  let state: { t: TestEnv; svc: Service; api: Client } | undefined;
  beforeAll(async () => {
    const t = testEnv(env);
    await prepare(t);
    const svc = await startTestService(t);
    state = { t, svc, api: await client(svc) };
  });
  afterAll(async () => {
    await state?.svc.close();
    if (state) cleanup(state.t);
  });
  const get = () => {
    if (!state) throw new Error("the service starts in beforeAll");
    return state;
  };
  return {
    get t() {
      return get().t;
    },
    get svc() {
      return get().svc;
    },
    get api() {
      return get().api;
    },
  };
}
