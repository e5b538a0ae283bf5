import type { Db } from "./driver";

const ACTIVE_MODEL = "active_model";

export function createSettingsRepo(db: Db) {
  const get = (key: string) =>
    db.prepare<{ value: string }>("SELECT value FROM settings WHERE key = @key").get({ key })?.value ?? null;
  const set = (key: string, value: string | null) =>
    value === null
      ? db.prepare("DELETE FROM settings WHERE key = @key").run({ key })
      : db
          .prepare("INSERT INTO settings (key, value) VALUES (@key, @value) ON CONFLICT(key) DO UPDATE SET value = @value")
          .run({ key, value });
  return {
    activeModel: (): string | null => get(ACTIVE_MODEL),
    setActiveModel: (id: string | null): void => void set(ACTIVE_MODEL, id),
    /** Clears the active model only if it is still `id`, so a newer activation is kept. */
    clearActiveModelIf(id: string): void {
      db.prepare("DELETE FROM settings WHERE key = @key AND value = @id").run({ key: ACTIVE_MODEL, id });
    },
  };
}
export type SettingsRepo = ReturnType<typeof createSettingsRepo>;
