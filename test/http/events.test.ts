// GET /api/v1/events and /api/v1/jobs/{id}/events: Server-Sent Events from the
// SQLite change log, in order, resumable with Last-Event-ID.
import { describe, expect, test } from "bun:test";
import { affineModel } from "../fixtures/onnx-builder";
import { token, useService, writeModel } from "../helpers";

interface Sse {
  id?: string;
  event?: string;
  data?: any;
}

/** Reads a text/event-stream body event by event. */
function reader(res: Response) {
  const r = res.body!.getReader();
  const dec = new TextDecoder();
  let buf = "";
  return {
    async next(timeoutMs = 10_000): Promise<Sse | null> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const cut = buf.indexOf("\n\n");
        if (cut >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          const ev: Sse = {};
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) continue;
            const [k, ...v] = line.split(": ");
            if (k === "data") ev.data = JSON.parse(v.join(": "));
            else if (k === "id" || k === "event") ev[k] = v.join(": ");
          }
          if (ev.id) return ev;
          continue;
        }
        const chunk = await Promise.race([r.read(), Bun.sleep(Math.max(0, deadline - Date.now())).then(() => "timeout" as const)]);
        if (chunk === "timeout") throw new Error(`no event within ${timeoutMs} ms`);
        if (chunk.done) return null;
        buf += dec.decode(chunk.value, { stream: true });
      }
    },
    close: () => r.cancel(),
  };
}

const svc = useService({}, (t) => {
  writeModel(t.modelDir, "m.onnx", affineModel());
  writeModel(t.modelDir, "n.onnx", affineModel());
});

/** Collapses repeats: the same phase is written once per state change (pending, then running). */
const phases = (events: Sse[]) => events.filter((e) => e.event === "job").map((e) => e.data.phase).filter((p, i, a) => p !== a[i - 1]);

describe("event streams", () => {
  test("a job's events carry every field the job API shows, a Triton load's reread included", async () => {
    // The change log's job snapshot was written before `reread` existed, and said false for a Triton load.
    const stream = reader(await svc.api.call("GET", "/api/v1/events"));
    expect((await svc.api.json("POST", "/v2/repository/models/n/load")).status).toBe(200);
    let last: Sse;
    do last = (await stream.next())!;
    while (!(last.event === "job" && last.data.modelId === "n" && last.data.state === "completed"));
    await stream.close();
    expect(last.data.reread).toBe(true);
    expect(last.data).toEqual((await svc.api.json("GET", `/api/v1/jobs/${last.data.id}`)).body);
    expect((await svc.api.json("POST", "/v2/repository/models/n/unload")).status).toBe(200);
  });

  test("a client sees a load's phases in order; reconnecting with Last-Event-ID misses nothing", async () => {
    const res = await svc.api.call("GET", "/api/v1/events");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("text/event-stream");
    const stream = reader(res);
    const job = (await svc.api.json("POST", "/api/v1/models/m/load")).body;
    const seen: Sse[] = [];
    for (;;) {
      const ev = (await stream.next())!;
      seen.push(ev);
      if (ev.event === "job" && ev.data.id === job.id && ev.data.state === "completed") break;
    }
    await stream.close();
    // The job event is the job as GET /api/v1/jobs/{id} returns it.
    expect(seen.at(-1)!.data).toEqual((await svc.api.json("GET", `/api/v1/jobs/${job.id}`)).body);
    expect(phases(seen)).toEqual(["queued", "verifying", "creating_session", "switching"]);
    const models = seen.filter((e) => e.event === "model" && e.data.state).map((e) => [e.data.state, e.data.servingVersion]);
    expect(models).toEqual([["loading", null], ["loading", "1"], ["loaded", "1"]]);
    // A 156-byte model can measure 0 bytes; what matters is that a measurement is sent.
    expect(seen.some((e) => e.event === "model" && e.data.version === "1" && Number.isInteger(e.data.memoryBytes))).toBe(true);
    const ids = seen.map((e) => Number(e.id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));

    // Disconnected after the third event: resuming from its id replays the rest, exactly.
    const resumed = reader(await svc.api.call("GET", "/api/v1/events", { headers: { "last-event-id": seen[2]!.id! } }));
    const again: Sse[] = [];
    while (again.length < seen.length - 3) again.push((await resumed.next())!);
    await resumed.close();
    expect(again.map((e) => e.id)).toEqual(seen.slice(3).map((e) => e.id));
    expect(again.map((e) => e.data)).toEqual(seen.slice(3).map((e) => e.data));
  });

  test("one job's stream sends its whole history and ends when it finishes", async () => {
    const job = (await svc.api.json("POST", "/api/v1/models/n/load")).body;
    const stream = reader(await svc.api.call("GET", `/api/v1/jobs/${job.id}/events`));
    const seen: Sse[] = [];
    for (let ev = await stream.next(); ev; ev = await stream.next()) seen.push(ev);
    expect(seen.every((e) => e.event === "job" && e.data.id === job.id)).toBe(true);
    expect(seen[0]!.data.state).toBe("pending");
    expect(seen.at(-1)!.data.state).toBe("completed");
    expect(phases(seen)).toEqual(["queued", "verifying", "creating_session", "switching"]);
  });

  test("admins see everything; other tokens see only their own jobs; bad input is 4xx", async () => {
    const infer = await token({ role: "infer" }, { sub: "app" });
    const own = reader(await svc.api.call("GET", "/api/v1/events", { token: infer }));
    const job = (await svc.api.json("POST", "/api/v1/models/m/unload")).body;
    await svc.api.waitJob(job.id);
    await expect(own.next(500)).rejects.toThrow("no event");
    await own.close();
    expect((await svc.api.call("GET", `/api/v1/jobs/${job.id}/events`, { token: infer })).status).toBe(403);
    expect((await svc.api.call("GET", "/api/v1/events", { token: null })).status).toBe(401);
    expect((await svc.api.call("GET", "/api/v1/jobs/job_nope/events")).status).toBe(404);
    const bad = await svc.api.json("GET", "/api/v1/events", { headers: { "last-event-id": "yesterday" } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("VALIDATION_ERROR");
  });
});
