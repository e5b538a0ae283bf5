import { readdir, stat, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Deps } from "../context";
import type { ModelRecord } from "../db/models.repo";
import { AppError } from "../errors";
import { fingerprint, resolveModelPath } from "./model-files";

export const MODEL_ID_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

export type ModelView = Omit<ModelRecord, "mtimeMs"> & { active: boolean };

type ModelDeps = Pick<Deps, "db" | "models" | "jobs" | "settings" | "runtime" | "config" | "log">;

/** The public shape: the registry record without bookkeeping, plus whether it is the active model. */
export function toView(m: ModelRecord, d: Pick<Deps, "settings">): ModelView {
  const { mtimeMs: _, ...rest } = m;
  return { ...rest, active: d.settings.activeModel() === m.id };
}

export function getModel(id: string, d: Pick<Deps, "models">): ModelRecord {
  const m = d.models.get(id);
  if (!m) throw new AppError("MODEL_NOT_FOUND", `no model ${id}`);
  return m;
}

export function activeModelId(d: Pick<Deps, "settings">): string {
  const id = d.settings.activeModel();
  if (!id) throw new AppError("NO_ACTIVE_MODEL", "no model is active; load one first");
  return id;
}

export async function registerModel(
  input: { id: string; path: string; providers?: string[] },
  d: ModelDeps,
): Promise<ModelRecord> {
  if (d.models.get(input.id)) throw new AppError("MODEL_EXISTS", `model ${input.id} is already registered`);
  const file = await resolveModelPath(d.config.modelDir, input.path);
  const fp = await fingerprint(file.abs);
  return d.db.tx(() => {
    // Re-check inside the transaction: hashing yielded, so another request may have won.
    if (d.models.get(input.id)) throw new AppError("MODEL_EXISTS", `model ${input.id} is already registered`);
    return d.models.insert({ id: input.id, path: file.rel, ...fp, source: "api", providers: input.providers });
  });
}

export function deleteModel(id: string, d: ModelDeps): void {
  d.db.tx(() => {
    const m = getModel(id, d);
    if (m.state !== "unloaded" && m.state !== "failed") {
      throw new AppError("MODEL_BUSY", `model ${id} is ${m.state}; unload it first`);
    }
    if (d.jobs.latestUnfinished(id)) throw new AppError("MODEL_BUSY", `model ${id} has unfinished jobs`);
    d.models.delete(id);
    d.settings.clearActiveModelIf(id);
  });
}

/** `<dir>/<id>.onnx` and `<dir>/<id>/model.onnx`, as relative paths keyed by id. */
async function discover(modelDir: string, log: Deps["log"]): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  const entries = await readdir(modelDir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    let id: string | undefined;
    let rel: string | undefined;
    if (e.name.endsWith(".onnx") && !e.isDirectory()) {
      id = e.name.slice(0, -".onnx".length);
      rel = e.name;
    } else if (e.isDirectory() || e.isSymbolicLink()) {
      const candidate = join(e.name, "model.onnx");
      if (await stat(join(modelDir, candidate)).then((s) => s.isFile(), () => false)) {
        id = e.name;
        rel = candidate;
      }
    }
    if (!id || !rel) continue;
    if (!MODEL_ID_PATTERN.test(id)) {
      log.warn("skipping model file whose name is not a valid model id", { path: rel });
      continue;
    }
    found.set(id, rel);
  }
  return found;
}

/** Registers new model files found in the model dir; refreshes changed ones that are not loaded. */
export async function scanModelDir(d: ModelDeps): Promise<{ added: string[]; updated: string[] }> {
  const added: string[] = [];
  const updated: string[] = [];
  for (const [id, rel] of await discover(d.config.modelDir, d.log)) {
    let file;
    try {
      file = await resolveModelPath(d.config.modelDir, rel);
    } catch (err) {
      d.log.warn("skipping model file", { path: rel, error: (err as Error).message });
      continue;
    }
    const existing = d.models.get(id);
    if (existing && existing.path !== file.rel) continue; // the id was registered through the API for another file
    const st = await stat(file.abs);
    if (existing && existing.sizeBytes === st.size && existing.mtimeMs === Math.floor(st.mtimeMs)) continue;
    const fp = await fingerprint(file.abs);
    if (!existing) {
      d.models.insert({ id, path: file.rel, ...fp, source: "scan" });
      added.push(id);
    } else if (existing.state === "unloaded" || existing.state === "failed") {
      d.models.updateFile(id, fp);
      updated.push(id);
    }
  }
  return { added, updated };
}

/** Places the built-in demo model into the default model dir so a fresh start serves something real. */
export async function installDemoModel(modelDir: string, bytes: Uint8Array): Promise<boolean> {
  const target = join(modelDir, "demo.onnx");
  if (await stat(target).then(() => true, () => false)) return false;
  await mkdir(modelDir, { recursive: true });
  await writeFile(target, bytes);
  return true;
}
