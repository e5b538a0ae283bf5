// Zero-downtime swaps, for real: 16 clients infer back to back over HTTP for
// 10 s while the model is swapped v1 → v2 → v1 → v2, then to a corrupt v3.
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Service } from "../../src/server";
import { affineModel } from "../fixtures/onnx-builder";
import { cleanup, client, startTestService, testEnv, token, writeModel, type Client, type TestEnv } from "../helpers";

const CLIENTS = 16;
const DURATION_MS = 10_000;

let t: TestEnv;
let svc: Service;
let api: Client;
let server: ReturnType<typeof Bun.serve>;

beforeAll(async () => {
  t = testEnv();
  // Different weights, so every answer shows which version computed it.
  writeModel(t.modelDir, "m/1/model.onnx", affineModel(2, 1));
  writeModel(t.modelDir, "m/2/model.onnx", affineModel(3, -1));
  writeModel(t.modelDir, "m/3/model.onnx", "a corrupt version 3");
  svc = await startTestService(t);
  api = await client(svc);
  server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: svc.app.fetch });
});
afterAll(async () => {
  server.stop(true);
  await svc.close();
  cleanup(t);
});

const compute = (version: string, x: number[]) => x.map((v) => (version === "1" ? 2 * v + 1 : 3 * v - 1));

interface Answer {
  sent: number;
  received: number;
  status: number;
  version?: string;
  correct?: boolean;
  error?: string;
}

/** One client: back-to-back requests with distinct inputs until the deadline. */
async function runClient(c: number, deadline: number, auth: string, answers: Answer[]): Promise<void> {
  for (let i = 0; Date.now() < deadline; i++) {
    const x = [c, i % 100, 1, -1];
    const sent = Date.now();
    try {
      const res = await fetch(`http://127.0.0.1:${server.port}/v2/models/m/infer`, {
        method: "POST",
        headers: { authorization: `Bearer ${auth}`, "content-type": "application/json" },
        body: JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: x }] }),
      });
      const body = (await res.json()) as { model_version?: string; outputs?: { data: number[] }[]; error?: string };
      const version = body.model_version;
      const correct = version !== undefined && JSON.stringify(body.outputs?.[0]?.data) === JSON.stringify(compute(version, x));
      answers.push({ sent, received: Date.now(), status: res.status, version, correct, error: body.error });
    } catch (err) {
      answers.push({ sent, received: Date.now(), status: 0, error: String(err) });
    }
  }
}

const at = (job: { timeline: { phase: string; at: string }[] }, phase: string) => {
  const entry = job.timeline.find((p) => p.phase === phase);
  if (!entry) throw new Error(`job never reached ${phase}: ${JSON.stringify(job.timeline)}`);
  return Date.parse(entry.at);
};

test(`${CLIENTS} clients for ${DURATION_MS / 1000} s through v1 → v2 → v1 → v2 swaps and a failed swap to a corrupt v3: zero failed requests`, async () => {
  expect((await api.waitJob((await api.json("POST", "/api/v1/models/m/load", { body: { version: "1" } })).body.id)).state).toBe("completed");
  const infer = await token({ role: "infer" });
  const answers: Answer[] = [];
  const deadline = Date.now() + DURATION_MS;
  const clients = Array.from({ length: CLIENTS }, (_, c) => runClient(c, deadline, infer, answers));

  const swaps = [];
  for (const version of ["2", "1", "2", "3"]) {
    await Bun.sleep(DURATION_MS / 5);
    const job = await api.waitJob((await api.json("POST", "/api/v1/models/m/load", { body: { version } })).body.id);
    swaps.push(job);
  }
  await Promise.all(clients);

  expect(swaps.map((j) => [j.version, j.state, j.error?.code ?? null])).toEqual([
    ["2", "completed", null],
    ["1", "completed", null],
    ["2", "completed", null],
    ["3", "failed", "LOAD_FAILED"],
  ]);
  const failed = answers.filter((a) => a.status !== 200);
  const byVersion = Object.groupBy(answers, (a) => a.version ?? "none");
  console.log(
    `swap under load: ${answers.length} requests, ${failed.length} failed; per version ${JSON.stringify(Object.fromEntries(Object.entries(byVersion).map(([k, v]) => [k, v!.length])))}`,
  );
  expect(failed.slice(0, 5)).toEqual([]);
  expect(answers.filter((a) => !a.correct)).toEqual([]);
  expect(answers.length).toBeGreaterThan(CLIENTS * 50);

  // Which version may answer when: v1 until the first swap's old session had
  // drained; each swapped-in version from its `switching` step until the next
  // swap's `draining` step. A request answered by a version must have been in
  // flight during that version's window, so no version answers before its switch.
  const done = swaps.slice(0, 3);
  const windows = [
    { version: "1", from: -Infinity, to: at(done[0]!, "draining") + 1 },
    ...done.map((j, k) => ({ version: j.version!, from: at(j, "switching"), to: k + 1 < done.length ? at(done[k + 1]!, "draining") + 1 : Infinity })),
  ];
  const outOfWindow = answers.filter((a) => !windows.some((w) => w.version === a.version && a.sent <= w.to && a.received >= w.from));
  expect(outOfWindow.slice(0, 5)).toEqual([]);
  // Each version really answered after its switch: the swaps were exercised under load.
  for (const w of windows.slice(1)) expect(answers.some((a) => a.version === w.version && a.received >= w.from)).toBe(true);

  const m = (await api.json("GET", "/api/v1/models/m")).body;
  expect(m).toMatchObject({ state: "loaded", servingVersion: "2" });
  expect(m.versions.map((v: { version: string; state: string }) => [v.version, v.state])).toEqual([["1", "unloaded"], ["2", "loaded"], ["3", "failed"]]);
  expect(svc.deps.lifecycle.violations()).toEqual([]);
}, 60_000);
