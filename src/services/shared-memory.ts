// Triton's system shared memory extension: a client on the same host puts a
// tensor in a POSIX shared memory object (/dev/shm/<key>), registers a region of
// it, and names the region in an input's or output's parameters instead of
// sending the bytes. Off unless MODELD_ALLOW_CLIENT_SHM is set, as Triton's
// --allow-client-shm: a registered region lets inference callers read and write
// that memory through a model.
import { constants } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { AppError } from "../errors";

export interface RegionStatus {
  name: string;
  key: string;
  offset: number;
  byte_size: number;
}

interface Region extends RegionStatus {
  file: FileHandle;
}

/** A tensor's place in a region, as an input's or output's parameters name it. */
export interface RegionSlice {
  region: string;
  offset: number;
  byteSize: number;
}

/** POSIX names one object per name: `/name` or `name`, with no other slash. */
const KEY_PATTERN = /^\/?[^/\0]{1,255}$/;
/** Each region holds a file descriptor. */
export const MAX_REGIONS = 1024;

const invalid = (message: string) => new AppError("SHARED_MEMORY_INVALID", message);
const taken = (name: string) => invalid(`shared memory region ${JSON.stringify(name)} is already registered; unregister it first`);

/** The CUDA extension's register, over HTTP and gRPC alike. */
export const cudaSharedMemoryRefused = () =>
  invalid("CUDA shared memory is not supported: onnxruntime-node takes tensors from host memory; use system shared memory (/v2/systemsharedmemory, or SystemSharedMemoryRegister over gRPC)");
/** A read or write that failed (the region unregistered under it, the object gone bad) is the request's error, not a crash. */
const failedOn = (region: RegionStatus, what: string) => (err: NodeJS.ErrnoException): never => {
  throw invalid(`${what}: shared memory region ${region.name} (${region.key}) could not be used: ${err.code ?? err.message}`);
};
const statusOf = ({ file: _, ...status }: Region): RegionStatus => status;

export class SystemSharedMemory {
  private readonly regions = new Map<string, Region>();

  constructor(private readonly opts: { allowed: boolean; dir?: string }) {}

  get allowed(): boolean {
    return this.opts.allowed;
  }

  private requireAllowed(): void {
    if (!this.opts.allowed) throw new AppError("SHARED_MEMORY_DISABLED", "shared memory regions from clients are off; an operator turns them on with MODELD_ALLOW_CLIENT_SHM=true");
  }

  /** Every region, or the one named; Triton's status answers an unknown name with an error. */
  status(name?: string): RegionStatus[] {
    if (name === undefined) return [...this.regions.values()].map(statusOf);
    return [statusOf(this.get(name))];
  }

  async register(name: string, key: string, offset: number, byteSize: number): Promise<void> {
    this.requireAllowed();
    if (name === "") throw invalid("a region needs a name");
    if (!KEY_PATTERN.test(key) || key.replace(/^\//, "") === "." || key.replace(/^\//, "") === "..") {
      throw invalid(`key ${JSON.stringify(key)} is not a shared memory object's name (/name, as shm_open takes it)`);
    }
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(byteSize) || byteSize <= 0) throw invalid("offset must be 0 or more and byte_size more than 0");
    if (this.regions.has(name)) throw taken(name);
    if (this.regions.size >= MAX_REGIONS) throw invalid(`${MAX_REGIONS} regions are registered; unregister some first`);
    const path = join(this.opts.dir ?? "/dev/shm", key.replace(/^\//, ""));
    let file: FileHandle;
    try {
      // Never through a symlink: the key names a shared memory object, not a path elsewhere.
      file = await open(path, constants.O_RDWR | constants.O_NOFOLLOW);
    } catch (err) {
      // Deno opens nothing under /dev without --allow-all, whatever --allow-read and --allow-write say (denoland/deno#30979).
      const deno = (err as Error).name === "NotCapable" ? "; under Deno, modeld must run with --allow-all to open shared memory (Deno asks it for any file under /dev)" : "";
      throw invalid(`cannot open shared memory object ${key} (${path}): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}${deno}`);
    }
    try {
      const st = await file.stat();
      if (!st.isFile()) throw invalid(`${path} is not a shared memory object`);
      if (offset + byteSize > st.size) throw invalid(`offset ${offset} + byte_size ${byteSize} is past the end of ${key} (${st.size} bytes)`);
      // Registered meanwhile by another call with the same name.
      if (this.regions.has(name)) throw taken(name);
    } catch (err) {
      await file.close();
      throw err;
    }
    this.regions.set(name, { name, key, offset, byte_size: byteSize, file });
  }

  /** The region named, or every region; an unknown name is already unregistered. */
  async unregister(name?: string): Promise<void> {
    this.requireAllowed();
    const gone = name === undefined ? [...this.regions.values()] : [this.regions.get(name)].filter((r) => r !== undefined);
    for (const r of gone) this.regions.delete(r.name);
    // A read or write it cuts short is its request's 400 (failedOn), not a crash.
    await Promise.all(gone.map((r) => r.file.close()));
  }

  /** An input's bytes. */
  async read(slice: RegionSlice, what: string): Promise<Uint8Array> {
    const region = this.within(slice, what);
    const bytes = new Uint8Array(slice.byteSize);
    const { bytesRead } = await region.file.read(bytes, 0, slice.byteSize, region.offset + slice.offset).catch(failedOn(region, what));
    if (bytesRead !== slice.byteSize) throw invalid(`${what}: shared memory object ${region.key} is shorter than when it was registered`);
    return bytes;
  }

  /** An output's bytes, written where the request asked; more than it left room for is refused. */
  async write(slice: RegionSlice, bytes: Uint8Array, what: string): Promise<void> {
    const region = this.within(slice, what);
    assertFits(slice, bytes.byteLength, what);
    await region.file.write(bytes, 0, bytes.byteLength, region.offset + slice.offset).catch(failedOn(region, what));
  }

  async close(): Promise<void> {
    const all = [...this.regions.values()];
    this.regions.clear();
    await Promise.all(all.map((r) => r.file.close()));
  }

  private get(name: string): Region {
    const region = this.regions.get(name);
    if (!region) throw invalid(`no shared memory region ${JSON.stringify(name)} is registered`);
    return region;
  }

  /** Throws unless the slice lies in a registered region. */
  check(slice: RegionSlice, what: string): void {
    this.within(slice, what);
  }

  private within(slice: RegionSlice, what: string): Region {
    this.requireAllowed();
    const region = this.get(slice.region);
    if (slice.offset + slice.byteSize > region.byte_size) {
      throw invalid(`${what}: shared_memory_offset ${slice.offset} + shared_memory_byte_size ${slice.byteSize} is past the end of region ${slice.region} (${region.byte_size} bytes)`);
    }
    return region;
  }
}

/** An output's bytes fit the room its request gave it. */
export function assertFits(slice: RegionSlice, byteLength: number, what: string): void {
  if (byteLength > slice.byteSize) throw invalid(`${what}: shared_memory_byte_size is ${slice.byteSize} bytes, and the output needs ${byteLength}`);
}

const SHM_KEYS = ["shared_memory_region", "shared_memory_offset", "shared_memory_byte_size"];

/**
 * The region an input's or output's parameters name, or undefined. Triton's rules:
 * the region and its byte size go together, the offset defaults to 0.
 */
export function sliceIn(parameters: Record<string, unknown> | undefined, what: string): RegionSlice | undefined {
  if (!parameters || !SHM_KEYS.some((k) => k in parameters)) return undefined;
  const { shared_memory_region: region, shared_memory_offset: offset = 0, shared_memory_byte_size: byteSize } = parameters;
  if (typeof region !== "string" || region === "") throw invalid(`${what}: shared_memory_region must name a registered region`);
  if (typeof byteSize !== "number" || !Number.isSafeInteger(byteSize) || byteSize < 0) throw invalid(`${what}: shared_memory_byte_size must be given with shared_memory_region, as a byte count`);
  if (typeof offset !== "number" || !Number.isSafeInteger(offset) || offset < 0) throw invalid(`${what}: shared_memory_offset must be a byte count`);
  return { region, offset, byteSize };
}
