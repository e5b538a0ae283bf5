// Model paths come from admins and the model dir; both are checked so a path
// can never reach outside the model dir, through `..` or a symlink.
import type { BigIntStats } from "node:fs";
import { realpath, stat } from "node:fs/promises";
import { dirname, isAbsolute, relative, resolve, sep } from "node:path";
import { AppError } from "../errors";
import { withHashWorker, type HashWorker } from "../runtime/sha256";

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
const identityOf = (st: BigIntStats | undefined) => (st ? [st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs].join(":") : "-");

/**
 * A version's recorded identity: its model file's, then one line per external data
 * file the model names (`identity location`, "-" for one that is not there). A
 * model's weights may live in those files, so they are part of what was hashed.
 */
function composeIdentity(model: BigIntStats, data: { location: string; st?: BigIntStats }[]): string {
  return [identityOf(model), ...data.map((f) => `${identityOf(f.st)} ${f.location}`)].join("\n");
}

const dataLocationsOf = (identity: string | null) => (identity ?? "").split("\n").slice(1).map((line) => line.slice(line.indexOf(" ") + 1));

/** The model file and the external data files its recorded identity names, in that order: what its digest covers. */
export function versionFiles(abs: string, identity: string | null): string[] {
  return [abs, ...dataLocationsOf(identity).map((l) => resolve(dirname(abs), l))];
}

function missing(err: NodeJS.ErrnoException): undefined {
  if (err.code === "ENOENT") return undefined;
  throw err;
}
const statOrMissing = (p: string) => stat(p, { bigint: true }).catch(missing);

/**
 * The identity the version's files have now, for the files `recorded` names: if the
 * model file is unchanged, so is its list of external data files, so only stats are
 * needed, never a read of the model.
 */
export async function currentIdentity(abs: string, recorded: string | null): Promise<string> {
  const locations = dataLocationsOf(recorded);
  const [model, ...data] = await Promise.all([stat(abs, { bigint: true }), ...locations.map((l) => statOrMissing(resolve(dirname(abs), l)))]);
  return composeIdentity(model, locations.map((location, i) => ({ location, st: data[i] })));
}

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

/**
 * The version's facts and digest, over its model file and the external data files it
 * names: the size is theirs together (the memory a load is admitted for), and a
 * changed weights file fails the next load's check as a changed model file does.
 * The identity is taken before hashing, so a change while hashing shows as a
 * mismatch later. A model without external data keeps the plain file's sha256.
 */
export async function fingerprintWith(worker: HashWorker, abs: string): Promise<Fingerprint> {
  const locations = await worker.externalDataFiles(abs);
  const model = await settledStat(abs);
  const data: { location: string; st?: BigIntStats }[] = [];
  for (const location of locations) data.push({ location, st: await settledStat(resolve(dirname(abs), location)).catch(missing) });
  const statIdentity = composeIdentity(model, data);
  const sizeBytes = Number(data.reduce((n, f) => n + (f.st?.size ?? 0n), model.size));
  return { sizeBytes, mtimeMs: Number(model.mtimeNs / 1_000_000n), statIdentity, sha256: await worker.sha256(versionFiles(abs, statIdentity)) };
}

/** fingerprintWith, in a hash worker of its own: for one file. */
export const fingerprint = (abs: string): Promise<Fingerprint> => withHashWorker((worker) => fingerprintWith(worker, abs));
