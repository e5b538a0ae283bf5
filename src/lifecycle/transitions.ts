// The legal state changes of a model and of each of its versions: one table,
// read by the guarded writes, the tests and docs/lifecycle.md's diagram.
import type { ModelState } from "../db/models.repo";
import { IllegalTransition } from "./errors";

export interface Transition {
  from: ModelState;
  to: ModelState;
  /** What causes it, as the diagram labels the edge. */
  on: string;
}

export const TRANSITIONS: readonly Transition[] = [
  { from: "unloaded", to: "loading", on: "load job starts" },
  { from: "failed", to: "loading", on: "load job starts" },
  { from: "loading", to: "loaded", on: "session created, warmed up, switched in" },
  { from: "loading", to: "failed", on: "file, checksum, ONNX Runtime, warmup or timeout error" },
  { from: "loading", to: "unloaded", on: "cancelled, or modeld restarted" },
  { from: "loaded", to: "unloading", on: "unload job, or replaced by a swap" },
  { from: "loaded", to: "failed", on: "serving worker crashed" },
  { from: "loaded", to: "unloaded", on: "modeld restarted" },
  { from: "unloading", to: "unloaded", on: "drained and released, or modeld restarted" },
];

export function isLegal(from: ModelState, to: ModelState): boolean {
  return TRANSITIONS.some((t) => t.from === from && t.to === to);
}

/** Throws unless every `from` → `to` is in the table: an illegal transition is a bug and must fail loudly. */
export function assertLegal(what: string, from: readonly ModelState[], to: ModelState): void {
  const illegal = from.filter((f) => !isLegal(f, to));
  if (illegal.length) throw new IllegalTransition(`${what}: ${illegal.join(", ")} → ${to} is not a legal transition`);
}

/** The table as a Mermaid state diagram (docs/lifecycle.md embeds it; a test keeps the two equal). */
export function mermaidDiagram(): string {
  const lines = ["stateDiagram-v2", "    [*] --> unloaded: registered"];
  for (const t of TRANSITIONS) lines.push(`    ${t.from} --> ${t.to}: ${t.on}`);
  return lines.join("\n");
}
