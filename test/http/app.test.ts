// Every response carries X-Request-Id: the caller's own when it is a sane one,
// else a new one, and the same id the error body and the log lines carry.
import { expect, test } from "bun:test";
import { affineModel } from "../fixtures/onnx-builder";
import { token, useService, writeModel } from "../helpers";

const f = useService({}, (t) => void writeModel(t.modelDir, "m.onnx", affineModel()));

test("X-Request-Id on successes, errors and unknown routes alike", async () => {
  const infer = await token({ role: "infer" });
  const calls = [
    ["GET", "/health", null],
    ["GET", "/api/v1/models", undefined],
    ["GET", "/api/v1/models/nope", undefined],
    ["POST", "/api/v1/models/m/load", null],
    ["GET", "/v2/models/nope", infer],
    ["GET", "/no/such/route", null],
  ] as const;
  const seen = new Set<string>();
  for (const [method, path, tok] of calls) {
    const { res, body } = await f.api.json(method, path, { token: tok });
    const id = res.headers.get("x-request-id");
    expect([path, id]).toEqual([path, expect.stringMatching(/^[0-9a-f-]{36}$/)]);
    if (body?.error?.requestId !== undefined) expect(body.error.requestId).toBe(id);
    seen.add(id!);
  }
  expect(seen.size).toBe(calls.length);
});

test("a caller's own request id is kept when sane and replaced when not", async () => {
  const send = async (given: string) => (await f.api.call("GET", "/api/v1/models/nope", { headers: { "x-request-id": given } })).headers.get("x-request-id");
  expect(await send("trace-42_a=b")).toBe("trace-42_a=b");
  expect(await send("x".repeat(128))).toBe("x".repeat(128));
  for (const bad of ["x".repeat(129), "has space", "semi;colon"]) expect(await send(bad)).toMatch(/^[0-9a-f-]{36}$/);
});
