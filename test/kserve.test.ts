// deploy/kserve/ against KServe's own CRD schemas, offline and strict as
// `kubectl apply --validate=strict`: an unknown field anywhere is an error.
// The schemas are KServe's, unchanged, in ../shared/kserve-crds/ (not copied
// into this project).
import { describe, expect, test } from "bun:test";
import Ajv from "ajv";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { envSchema } from "../src/config";

const repo = join(import.meta.dir, "..");
const crdDir = join(repo, "../shared/kserve-crds");
const deployDir = join(repo, "deploy/kserve");
const haveCrds = existsSync(crdDir);
if (!haveCrds) console.warn(`kserve: ${crdDir} is missing, so the manifests cannot be validated here`);

type Schema = Record<string, unknown>;

/** Closes every object schema that lists properties, unless Kubernetes says to keep unknown fields. */
function strict(schema: Schema): Schema {
  const out: Schema = { ...schema };
  if (out.properties && out.additionalProperties === undefined && !out["x-kubernetes-preserve-unknown-fields"]) out.additionalProperties = false;
  for (const [k, v] of Object.entries(out)) {
    if (k === "properties" && v && typeof v === "object") {
      out[k] = Object.fromEntries(Object.entries(v as Record<string, Schema>).map(([name, s]) => [name, strict(s)]));
    } else if ((k === "items" || k === "additionalProperties") && v && typeof v === "object") out[k] = strict(v as Schema);
    else if ((k === "allOf" || k === "anyOf" || k === "oneOf") && Array.isArray(v)) out[k] = v.map((s) => strict(s as Schema));
  }
  return out;
}

/** The validator of each served kind/version, from KServe's CustomResourceDefinitions. */
function validators(): Map<string, ReturnType<Ajv["compile"]>> {
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  const byKind = new Map<string, ReturnType<Ajv["compile"]>>();
  for (const file of readdirSync(crdDir).filter((f) => f.endsWith(".yaml"))) {
    for (const doc of parseAllDocuments(readFileSync(join(crdDir, file), "utf8"))) {
      const crd = doc.toJS();
      if (crd?.kind !== "CustomResourceDefinition") continue;
      for (const v of crd.spec.versions) {
        if (!v.served) continue;
        byKind.set(`${crd.spec.group}/${v.name} ${crd.spec.names.kind}`, ajv.compile(strict(v.schema.openAPIV3Schema)));
      }
    }
  }
  return byKind;
}

const manifests = () =>
  readdirSync(deployDir)
    .filter((f) => f.endsWith(".yaml"))
    .flatMap((f) => parseAllDocuments(readFileSync(join(deployDir, f), "utf8")).map((d) => ({ file: f, doc: d.toJS() })));

describe.if(haveCrds)("deploy/kserve against KServe's CRDs", () => {
  const byKind = haveCrds ? validators() : new Map();

  test("holds only KServe resources, each valid against its CRD's schema, with no unknown field", () => {
    const found = manifests();
    expect(found.map((m) => m.file).sort()).toEqual(["clusterservingruntime.yaml", "inferenceservice.example.yaml"]);
    for (const { file, doc } of found) {
      const validate = byKind.get(`${doc.apiVersion} ${doc.kind}`);
      expect({ file, kind: `${doc.apiVersion} ${doc.kind}`, known: Boolean(validate) }).toEqual({ file, kind: `${doc.apiVersion} ${doc.kind}`, known: true });
      expect(typeof doc.metadata?.name).toBe("string");
      const valid = validate!(doc);
      expect({ file, errors: valid ? [] : validate!.errors }).toEqual({ file, errors: [] });
    }
  });

  test("the validation is strict: an unknown field or a missing required one fails (the control)", () => {
    const runtime = manifests().find((m) => m.file === "clusterservingruntime.yaml")!.doc;
    const validate = byKind.get(`${runtime.apiVersion} ${runtime.kind}`)!;
    expect(validate({ ...runtime, spec: { ...runtime.spec, protocolVersion: ["v2"] } })).toBe(false);
    expect(validate({ ...runtime, spec: { ...runtime.spec, containers: [{ ...runtime.spec.containers[0], imagee: "x" }] } })).toBe(false);
    expect(validate({ ...runtime, spec: { ...runtime.spec, containers: undefined } })).toBe(false);
  });

  test("the runtime is KServe's contract: onnx auto-selected, v2 and grpc-v2, kserve-container on 8080, readiness on /v2/health/ready, a startup probe for the first hash", () => {
    const runtime = manifests().find((m) => m.file === "clusterservingruntime.yaml")!.doc;
    expect(runtime.spec.supportedModelFormats).toContainEqual(expect.objectContaining({ name: "onnx", version: "1", autoSelect: true }));
    expect(runtime.spec.protocolVersions).toEqual(["v2", "grpc-v2"]);
    const [container] = runtime.spec.containers;
    expect(container.name).toBe("kserve-container");
    expect(container.ports).toContainEqual(expect.objectContaining({ containerPort: 8080 }));
    expect(container.readinessProbe.httpGet.path).toBe("/v2/health/ready");
    // A new pod hashes its model before listening; the liveness probe waits for the startup probe.
    expect(container.startupProbe.httpGet.path).toBe("/v2/health/live");
    expect(container.startupProbe.periodSeconds * container.startupProbe.failureThreshold).toBeGreaterThanOrEqual(600);
    const env = Object.fromEntries(container.env.map((e: { name: string; value: string }) => [e.name, e.value]));
    expect(env).toMatchObject({ MODELD_PORT: "8080", MODELD_MODEL_DIR: "/mnt/models", MODELD_LOAD_ON_START: "*" });
    // Every variable is one modeld knows: it refuses to start on an unknown MODELD_* name.
    for (const name of Object.keys(env)) expect(Object.keys(envSchema.shape)).toContain(name);
  });
});
