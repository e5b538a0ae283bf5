// The transition table is the one rule for model and version state.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { MODEL_STATES } from "../../src/db/models.repo";
import { IllegalTransition } from "../../src/lifecycle/errors";
import { assertLegal, isLegal, mermaidDiagram, TRANSITIONS } from "../../src/lifecycle/transitions";
import { affineModel } from "../fixtures/onnx-builder";
import { useService, writeModel } from "../helpers";

const repo = join(import.meta.dir, "../..");
const svc = useService({}, (t) => void writeModel(t.modelDir, "m.onnx", affineModel()));

describe("the transition table", () => {
  test("every state is reachable from unloaded, and every state can get back to unloaded", () => {
    const reach = (from: string, edges: [string, string][]) => {
      const seen = new Set([from]);
      for (let grew = true; grew; ) {
        grew = false;
        for (const [a, b] of edges) if (seen.has(a) && !seen.has(b)) (seen.add(b), (grew = true));
      }
      return seen;
    };
    const edges = TRANSITIONS.map((t) => [t.from, t.to] as [string, string]);
    expect([...reach("unloaded", edges)].sort()).toEqual([...MODEL_STATES].sort());
    for (const s of MODEL_STATES) expect({ s, backToUnloaded: reach(s, edges).has("unloaded") }).toEqual({ s, backToUnloaded: true });
  });

  test("moves the lifecycle never makes are illegal", () => {
    for (const [from, to] of [["unloaded", "loaded"], ["loaded", "loading"], ["unloading", "loaded"], ["failed", "loaded"], ["unloaded", "unloading"]] as const) {
      expect({ from, to, legal: isLegal(from, to) }).toEqual({ from, to, legal: false });
      expect(() => assertLegal("m", [from], to)).toThrow(IllegalTransition);
    }
    expect(() => assertLegal("m", ["unloaded", "failed"], "loading")).not.toThrow();
  });

  test("an illegal transition through the owner throws and writes nothing", () => {
    expect(() => svc.svc.deps.lifecycle.transition("m", ["unloaded"], "loaded")).toThrow(IllegalTransition);
    expect(() => svc.svc.deps.lifecycle.transitionVersion("m", 1, ["loaded"], "loading")).toThrow(IllegalTransition);
    const m = svc.svc.deps.models.get("m")!;
    expect(m.state).toBe("unloaded");
    expect(svc.svc.deps.models.version("m", 1)!.state).toBe("unloaded");
    // A legal transition whose guard misses changes nothing and says so.
    expect(svc.svc.deps.lifecycle.transition("m", ["loading"], "loaded")).toBe(false);
    expect(svc.svc.deps.lifecycle.violations()).toEqual([]);
  });

  test("docs/lifecycle.md draws exactly this table", () => {
    const doc = readFileSync(join(repo, "docs/lifecycle.md"), "utf8");
    const block = /```mermaid\n([\s\S]*?)\n```/.exec(doc)?.[1];
    expect(block).toBe(mermaidDiagram());
  });
});

describe("one owner", () => {
  test("no module outside src/lifecycle/ writes model state, version state, the serving version or the active model", () => {
    const writers = /\.(updateState|updateVersionState|setServingVersion|setActiveModel|clearActiveModelIf)\(/;
    const offenders: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (p.endsWith(".ts") && writers.test(readFileSync(p, "utf8"))) offenders.push(relative(repo, p));
      }
    };
    walk(join(repo, "src"));
    expect(offenders.filter((p) => !p.startsWith("src/lifecycle/") && !p.startsWith("src/db/"))).toEqual([]);
  });
});
