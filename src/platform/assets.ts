// Files modeld carries with it. Their `with { type }` imports are resolved by
// Bun: embedded in the compiled binary (a /$bunfs path), absolute paths when
// Bun runs the source, and, in the bundle Node and Deno run (npm run build --
// --portable), copies beside the bundle named relative to the file that
// imports them, which is why each path is resolved against this module's URL.
import { isAbsolute } from "node:path";
import { fileURLToPath } from "node:url";
import m0001 from "../../migrations/0001_init.sql" with { type: "text" };
import m0002 from "../../migrations/0002_versions.sql" with { type: "text" };
import m0003 from "../../migrations/0003_memory_events.sql" with { type: "text" };
import m0004 from "../../migrations/0004_audit_repeats.sql" with { type: "text" };
import m0005 from "../../migrations/0005_job_reread.sql" with { type: "text" };
import inferenceProto from "../grpc/inference.proto" with { type: "text" };
import healthProto from "../grpc/health.proto" with { type: "text" };
import demoModelFile from "../../assets/demo.onnx" with { type: "file" };
import scalarScriptFile from "../../node_modules/@scalar/api-reference/dist/browser/standalone.js" with { type: "file" };
import ortLibFile from "../../node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1" with { type: "file" };

const resolveAsset = (p: string) => (isAbsolute(p) ? p : fileURLToPath(new URL(p, import.meta.url)));

/** Schema migrations, in order; add each new numbered file here (the number is the schema version). */
export const MIGRATION_SQL: { version: number; name: string; sql: string }[] = [
  { version: 1, name: "0001_init", sql: m0001 },
  { version: 2, name: "0002_versions", sql: m0002 },
  { version: 3, name: "0003_memory_events", sql: m0003 },
  { version: 4, name: "0004_audit_repeats", sql: m0004 },
  { version: 5, name: "0005_job_reread", sql: m0005 },
];

/** The gRPC service definition (src/grpc/inference.proto), parsed at start when MODELD_GRPC_PORT is set. */
export const INFERENCE_PROTO: string = inferenceProto;

/** gRPC's standard health service (src/grpc/health.proto), served beside it. */
export const HEALTH_PROTO: string = healthProto;

/** The demo model placed in a fresh model dir, also used to warm ONNX Runtime in a new thread. */
export const demoModelPath = (): string => resolveAsset(demoModelFile);

/** Scalar's standalone script, served by /docs so the page needs no CDN. */
export const scalarScriptPath = (): string => resolveAsset(scalarScriptFile);

/** The libonnxruntime.so.1 that onnxruntime-node's addon links against. */
export const ortLibPath = (): string => resolveAsset(ortLibFile);

/** True inside the `bun build --compile` binary. */
export const isCompiledBinary = (): boolean => ortLibFile.includes("$bunfs");
