// Prometheus metrics. Where Triton has a name, modeld uses it, so existing
// Grafana dashboards work. Inference counters are read from the same
// statistics as /v2/.../stats at scrape time, so the two always agree; job
// counters are read from the durable change log, so every writer of a job is
// counted without being instrumented. Labels are bounded: registered model ids
// and route templates only.
import type { Deps } from "../context";
import { isFinished } from "../jobs/states";
import type { VersionStats } from "./stats.service";

type MetricsDeps = Pick<Deps, "models" | "runtime" | "stats" | "events">;

const INFERENCE_COUNTERS: { name: string; help: string; value: (s: VersionStats) => number }[] = [
  { name: "nv_inference_request_success", help: "Successful inference requests", value: (s) => s.success.count },
  { name: "nv_inference_request_failure", help: "Failed inference requests", value: (s) => s.fail.count },
  { name: "nv_inference_count", help: "Inferences performed (a batching model's request counts its rows)", value: (s) => s.inferenceCount },
  { name: "nv_inference_exec_count", help: "Model executions (session.run calls; fewer than requests when batched)", value: (s) => s.executionCount },
  { name: "nv_inference_request_duration_us", help: "Cumulative request handling time, successful and failed, in µs", value: (s) => us(s.success.ns + s.fail.ns) },
  { name: "nv_inference_queue_duration_us", help: "Cumulative time requests waited for the model's worker, in µs", value: (s) => us(s.queue.ns) },
  { name: "nv_inference_compute_input_duration_us", help: "Cumulative time turning request tensors into session inputs, in µs", value: (s) => us(s.computeInput.ns) },
  { name: "nv_inference_compute_infer_duration_us", help: "Cumulative session.run time, in µs", value: (s) => us(s.computeInfer.ns) },
  { name: "nv_inference_compute_output_duration_us", help: "Cumulative time turning session outputs into responses, in µs", value: (s) => us(s.computeOutput.ns) },
];

const us = (ns: number) => Math.floor(ns / 1000);

/** A label value or help text as the text format writes it. */
const escapeLabel = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
const escapeHelp = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");

/**
 * The series of every registered version, written directly in the text format, from
 * one read of the registry. Through prom-client (a collect per metric, and labels
 * hashed per series) a scrape with 500 registered models held the HTTP thread ~100 ms.
 */
function versionSeries(d: Pick<MetricsDeps, "models" | "stats">): string {
  const versions = d.models.versionStates().map((v) => {
    const version = String(v.version);
    return { labels: `model="${escapeLabel(v.modelId)}",version="${version}"`, state: v.state, stats: d.stats.get(v.modelId, version) };
  });
  const lines: string[] = [];
  const family = (name: string, help: string, type: "counter" | "gauge") => lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
  for (const c of INFERENCE_COUNTERS) {
    family(c.name, c.help, "counter");
    for (const v of versions) lines.push(`${c.name}{${v.labels}} ${c.value(v.stats)}`);
  }
  family("modeld_model_state", "1 for each registered version's current state (unloaded, loading, loaded, unloading, failed)", "gauge");
  for (const v of versions) lines.push(`modeld_model_state{${v.labels},state="${v.state}"} 1`);
  return `${lines.join("\n")}\n`;
}

type PromClient = typeof import("prom-client");

const HEAP_SPACE_METRICS = ["nodejs_heap_space_size_total_bytes", "nodejs_heap_space_size_used_bytes", "nodejs_heap_space_size_available_bytes"];

/** Counted on the request path: a plain map, turned into a counter at scrape time. */
type RequestCounts = Map<string, { route: string; status: string; n: number }>;

/** The registry, built at the first scrape: importing prom-client costs tens of ms that a start should not pay. */
function buildRegistry({ collectDefaultMetrics, Counter, Gauge, Histogram, Registry }: PromClient, d: MetricsDeps, requests: RequestCounts, sinceSeq: number) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // They read v8.getHeapSpaceStatistics(), which takes ~10 ms of the HTTP thread on Bun
  // (JavaScriptCore walks its heap for it) at every scrape; the heap's totals stay.
  for (const name of HEAP_SPACE_METRICS) registry.removeSingleMetric(name);

  new Gauge({
    name: "modeld_model_memory_bytes",
    help: "What each serving session counts against the memory budget: measured at load, else estimated",
    labelNames: ["model", "version"],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of d.runtime.sessions()) this.set({ model: s.modelId, version: s.version }, s.accountedBytes);
    },
  });

  // Jobs finish once (guarded SQL never updates a finished job), so counting
  // finished snapshots in the change log since the start counts each job once.
  const jobs = new Counter({ name: "modeld_jobs_total", help: "Jobs finished since the start, by kind and final state", labelNames: ["kind", "state"], registers: [registry] });
  const durations = new Histogram({
    name: "modeld_job_duration_seconds",
    help: "From a job's creation to its end, by kind",
    labelNames: ["kind"],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [registry],
  });
  const evictions = new Counter({
    name: "modeld_evictions_total",
    help: "Models unloaded by modeld itself: evicted for room, or idle past keepAlive",
    labelNames: ["reason"],
    registers: [registry],
  });
  for (const state of ["completed", "failed", "cancelled"]) for (const kind of ["load", "unload"]) jobs.inc({ kind, state }, 0);
  for (const reason of ["evicted", "idle"]) evictions.inc({ reason }, 0);
  let seq = sinceSeq;
  const readChangeLog = () => {
    for (let batch = d.events.after(seq, {}); batch.length; batch = d.events.after(seq, {})) {
      for (const e of batch) {
        seq = e.seq;
        if (e.kind !== "job" || !isFinished(e.job.state)) continue;
        const job = e.job;
        jobs.inc({ kind: job.kind, state: job.state });
        durations.observe({ kind: job.kind }, (Date.parse(job.finishedAt ?? e.at) - Date.parse(job.createdAt)) / 1000);
        const reason = job.reason?.kind;
        if (job.state === "completed" && (reason === "evicted" || reason === "idle")) evictions.inc({ reason });
      }
    }
  };

  new Counter({
    name: "modeld_http_requests_total",
    help: "HTTP requests by route template and status",
    labelNames: ["route", "status"],
    registers: [registry],
    collect() {
      this.reset();
      for (const r of requests.values()) this.inc({ route: r.route, status: r.status }, r.n);
    },
  });

  return {
    contentType: registry.contentType,
    async text(): Promise<string> {
      readChangeLog();
      return (await registry.metrics()) + versionSeries(d);
    },
  };
}

export function createMetrics(d: MetricsDeps) {
  const requests: RequestCounts = new Map();
  // Jobs are counted from the change log since the start.
  const sinceSeq = d.events.latestSeq();
  let registry: Promise<ReturnType<typeof buildRegistry>> | undefined;
  const ready = () => (registry ??= import("prom-client").then((m) => buildRegistry(m, d, requests, sinceSeq)));
  return {
    /** The text exposition format, with its content type. */
    async scrape(): Promise<{ contentType: string; text: string }> {
      const r = await ready();
      return { contentType: r.contentType, text: await r.text() };
    },
    /** `route` is the template that answered ("/v2/models/:name/infer"), never the raw path. */
    countRequest(route: string, status: number): void {
      const key = `${status} ${route}`;
      const r = requests.get(key);
      if (r) r.n++;
      else requests.set(key, { route, status: String(status), n: 1 });
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
