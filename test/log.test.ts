import { describe, expect, test } from "bun:test";
import { createLogger } from "../src/log";

describe("log", () => {
  const capture = (level: "debug" | "info" | "warn" | "error") => {
    const lines: Record<string, unknown>[] = [];
    return { lines, log: createLogger(level, { service: "modeld" }, (l) => lines.push(JSON.parse(l))) };
  };

  test("a child's lines carry every ancestor's fields, the nearest winning", () => {
    const { lines, log } = capture("info");
    const request = log.child({ requestId: "r1", who: "request" });
    request.child({ sub: "alice", who: "auth" }).warn("refused", { code: "FORBIDDEN" });
    request.info("done");
    expect(lines[0]).toMatchObject({ level: "warn", msg: "refused", service: "modeld", requestId: "r1", sub: "alice", who: "auth", code: "FORBIDDEN" });
    expect(lines[1]).toMatchObject({ level: "info", msg: "done", service: "modeld", requestId: "r1", who: "request" });
    expect(lines[1]).not.toHaveProperty("sub");
    expect(typeof lines[0]!.time).toBe("string");
  });

  test("lines below the level are not written, and enabled() says so", () => {
    const { lines, log } = capture("warn");
    const child = log.child({ requestId: "r2" });
    child.debug("no");
    child.info("no");
    child.error("yes");
    expect(lines.map((l) => l.msg)).toEqual(["yes"]);
    expect([child.enabled("info"), child.enabled("warn"), child.enabled("error")]).toEqual([false, true, true]);
  });
});
