// Writes that must land: a full disk delays them instead of dropping them.
import { isStorageError, isStorageFull, type AppError } from "../errors";
import type { Logger } from "../log";

/** Runs `write`, handing the errors `skippable` picks to `onSkipped` instead of throwing them; returns whether it was written. */
const writeUnless =
  (skippable: (err: unknown) => err is AppError) =>
  (write: () => void, onSkipped: (err: AppError) => void = () => {}): boolean => {
    try {
      write();
      return true;
    } catch (err) {
      if (!skippable(err)) throw err;
      onSkipped(err);
      return false;
    }
  };

/** For writes that can be skipped on a full disk, or that something else makes later; any other error is thrown. */
export const unlessDiskFull = writeUnless(isStorageFull);
/** For writes that can be skipped whatever the disk did (full or failed): a shutdown's records. */
export const unlessStorageFails = writeUnless(isStorageError);

export interface WhenRoomOptions {
  log: Logger;
  /** What the write records, for the log. */
  what: string;
  /** True once retrying should end (shutdown); restart recovery then handles what is left. */
  stopped?: () => boolean;
  retryMs?: number;
}

const pause = (ms: number) =>
  new Promise<void>((resolve) => {
    // Never the reason the process stays up.
    (setTimeout(resolve, ms) as { unref?: () => void }).unref?.();
  });

/**
 * Runs `write` now and, while the disk is full, again every `retryMs` until it
 * commits. Resolves true once it has, false if stopped first; any other error
 * rejects at once.
 */
export async function writeWhenRoom(write: () => void, o: WhenRoomOptions): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    const written = unlessDiskFull(write, (err) => {
      if (attempt === 1) o.log.error(`${o.what}: the disk is full; retrying until it has room`, { error: err.message });
    });
    if (written) {
      if (attempt > 1) o.log.info(`${o.what}: written once the disk had room`, { attempts: attempt });
      return true;
    }
    if (o.stopped?.()) return false;
    await pause(o.retryMs ?? 1000);
  }
}
