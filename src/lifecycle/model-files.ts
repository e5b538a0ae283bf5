// Model paths come from admins and the model dir; both are checked so a path
// can never reach outside the model dir, through `..` or a symlink.
import type { BigIntStats } from "node:fs";
import { realpath, stat } from "node:fs/promises";
import { isAbsolute, relative, resolve, sep } from "node:path";
import { AppError } from "../errors";
import { sha256File } from "../runtime/sha256";

function inside(root: string, p: string): boolean {
  const rel = relative(root, p);
  return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel);
}

/** Resolves `p` (relative to modelDir, or absolute inside it) to a real file path inside modelDir. */
export async function resolveModelPath(modelDir: string, p: string): Promise<{ abs: string; rel: string }> {
  if (p.split(/[\\/]/).includes("..")) throw new AppError("PATH_NOT_ALLOWED", `path must not contain "..": ${p}`);
  const candidate = resolve(modelDir, p);
  if (!inside(modelDir, candidate)) throw new AppError("PATH_NOT_ALLOWED", `path is outside the model dir: ${p}`);
  let real: string;
  let realRoot: string;
  try {
    [real, realRoot] = await Promise.all([realpath(candidate), realpath(modelDir)]);
  } catch {
    throw new AppError("MODEL_FILE_NOT_FOUND", `no file at ${p} in the model dir`);
  }
  if (!inside(realRoot, real)) throw new AppError("PATH_NOT_ALLOWED", `path resolves outside the model dir through a symlink: ${p}`);
  const st = await stat(real);
  if (!st.isFile()) throw new AppError("MODEL_FILE_NOT_FOUND", `not a regular file: ${p}`);
  return { abs: real, rel: relative(modelDir, candidate).split(sep).join("/") };
}

/**
 * Device, inode, size, mtime and ctime in nanoseconds. While all five match what
 * was recorded with a digest, the file is the one that was hashed: rewriting it
 * changes mtime and ctime, and ctime cannot be set back by a user (git's index
 * relies on the same rule). Replacing the file changes the inode.
 */
export async function statIdentity(abs: string): Promise<string> {
  return identityOf(await stat(abs, { bigint: true }));
}

const identityOf = (st: BigIntStats) => [st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs].join(":");

/**
 * How long a file's timestamps may read the same across two changes. Many kernels
 * stamp files from a clock that ticks every 1-10 ms; filesystems that keep whole
 * seconds (ext3, FAT; their ns part is 0) tick every 1-2 s.
 */
const tickMs = (ctimeNs: bigint): number => (ctimeNs % 1_000_000_000n === 0n ? 2000 : 20);
const SETTLE_TRIES = 10;

/**
 * The facts to record with a digest, taken once the file's last change is a
 * timestamp tick old: a change after it then gets a later ctime, where one in the
 * same tick would leave the recorded identity matching a file that is no longer the
 * one hashed (git's "racy clean" entries). A file that keeps changing, or a ctime
 * ahead of this host's clock (a network filesystem's), is taken as it is.
 */
async function settledStat(abs: string): Promise<BigIntStats> {
  let st = await stat(abs, { bigint: true });
  for (let i = 0; i < SETTLE_TRIES; i++) {
    const wait = tickMs(st.ctimeNs) - (Date.now() - Number(st.ctimeNs / 1_000_000n));
    if (wait <= 0 || wait > tickMs(st.ctimeNs)) break;
    await new Promise((r) => setTimeout(r, wait + 1));
    st = await stat(abs, { bigint: true });
  }
  return st;
}

export interface Fingerprint {
  sizeBytes: number;
  mtimeMs: number;
  sha256: string;
  statIdentity: string;
}

/** The file's facts and digest. The identity is taken before hashing, so a change while hashing shows as a mismatch later. */
export async function fingerprint(abs: string): Promise<Fingerprint> {
  const st = await settledStat(abs);
  return { sizeBytes: Number(st.size), mtimeMs: Number(st.mtimeNs / 1_000_000n), statIdentity: identityOf(st), sha256: await sha256File(abs) };
}
