// npm run image: the container image of deploy/Containerfile, built with
// buildah (no registry: FROM scratch). The context holds dist/modeld and every
// shared library that it, ONNX Runtime and its Node addon load, as ldd lists
// them. Says what failed when it cannot build.
import { copyFileSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { VERSION } from "../src/http/app";

export const IMAGE = `localhost/modeld:${VERSION}`;
const repo = join(import.meta.dir, "..");
const context = join(repo, "dist/image");
const ortDir = join(repo, "node_modules/onnxruntime-node/bin/napi-v6/linux/x64");

function fail(message: string): never {
  console.error(`npm run image: ${message}`);
  process.exit(1);
}

function run(cmd: string[]): string {
  const p = Bun.spawnSync(cmd, { cwd: repo, stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) fail(`${cmd.join(" ")} failed (exit ${p.exitCode}):\n${p.stderr.toString()}${p.stdout.toString()}`);
  return p.stdout.toString();
}

/** Absolute paths of the shared libraries a file loads, and of the dynamic loader. */
function sharedLibraries(file: string): string[] {
  return run(["ldd", file])
    .split("\n")
    .flatMap((l) => /(\/\S+) \(0x/.exec(l)?.[1] ?? [])
    .filter((p) => !p.startsWith(ortDir));
}

/** Builds the image and its archive; exits 1 saying what failed. */
function buildImage(): void {
  if (!Bun.which("buildah")) fail("buildah is not installed; on Debian: apt-get install buildah");
  const binary = join(repo, "dist/modeld");
  // Always from the current source: an older dist/modeld must never end up in the image.
  run([process.execPath, "scripts/build.ts", binary]);

  rmSync(context, { recursive: true, force: true });
  const rootfs = join(context, "rootfs");
  const libs = new Set([binary, join(ortDir, "libonnxruntime.so.1"), ...readdirSync(ortDir).filter((f) => f.endsWith(".node")).map((f) => join(ortDir, f))].flatMap(sharedLibraries));
  for (const lib of libs) {
    mkdirSync(join(rootfs, dirname(lib)), { recursive: true });
    copyFileSync(lib, join(rootfs, lib));
  }
  copyFileSync(binary, join(rootfs, "modeld"));
  mkdirSync(join(rootfs, "mnt/models"), { recursive: true });
  mkdirSync(join(context, "state"), { recursive: true });

  // The previous build's layers go first, so rebuilding does not pile up copies of a 150 MB binary.
  Bun.spawnSync(["buildah", "--storage-driver", "vfs", "rmi", "-f", IMAGE], { stdout: "ignore", stderr: "ignore" });
  run(["buildah", "--storage-driver", "vfs", "bud", "--quiet", "-f", join(repo, "deploy/Containerfile"), "-t", IMAGE, context]);
  const archive = join(repo, "dist/modeld-image.tar");
  rmSync(archive, { force: true });
  run(["buildah", "--storage-driver", "vfs", "push", "--quiet", IMAGE, `oci-archive:${archive}:${IMAGE}`]);
  console.log(`built ${IMAGE} (${libs.size} shared libraries beside /modeld), also saved as ${archive}`);
}

// The test imports IMAGE: only `npm run image` builds (on import, a machine without
// buildah ended the whole `npm test` with exit 1 and nothing run).
if (import.meta.main) buildImage();
