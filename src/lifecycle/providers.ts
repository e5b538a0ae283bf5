import { LifecycleError } from "./errors";

/**
 * Picks the execution providers to ask ONNX Runtime for. Checked before the
 * session is created because ONNX Runtime may abort the process when a
 * provider's library is missing.
 */
export function chooseProviders(
  requested: string[],
  available: string[],
  allowCpuFallback: boolean,
): { chosen: string[]; warnings: string[] } {
  const chosen = requested.filter((p) => available.includes(p));
  const missing = requested.filter((p) => !available.includes(p));
  if (missing.length === 0) return { chosen, warnings: [] };
  if (!allowCpuFallback) {
    throw new LifecycleError(
      "PROVIDER_UNAVAILABLE",
      `execution provider ${missing.join(", ")} is not available (found: ${available.join(", ")}); point MODELD_ORT_DIR at a GPU build of ONNX Runtime or allow CPU fallback`,
    );
  }
  if (!chosen.includes("cpu")) chosen.push("cpu");
  return { chosen, warnings: [`execution provider ${missing.join(", ")} is not available; falling back to ${chosen.join(", ")}`] };
}
