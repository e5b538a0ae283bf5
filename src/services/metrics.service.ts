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

type PromClient = typeof import("prom-client");

/** Counted on the request path: a plain map, turned into a counter at scrape time. */
type RequestCounts = Map<string, { route: string; status: string; n: number }>;

/** The registry, built at the first scrape: importing prom-client costs tens of ms that a start should not pay. */
function buildRegistry({ collectDefaultMetrics, Counter, Gauge, Histogram, Registry }: PromClient, d: MetricsDeps, requests: RequestCounts, sinceSeq: number) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const eachVersion = (f: (labels: { model: string; version: string }, s: VersionStats) => void) => {
    for (const m of d.models.list()) {
      for (const v of d.models.versions(m.id)) f({ model: m.id, version: String(v.version) }, d.stats.get(m.id, String(v.version)));
    }
  };
  for (const c of INFERENCE_COUNTERS) {
    new Counter({
      name: c.name,
      help: c.help,
      labelNames: ["model", "version"],
      registers: [registry],
      collect() {
        this.reset();
        eachVersion((labels, s) => this.inc(labels, c.value(s)));
      },
    });
  }

  new Gauge({
    name: "modeld_model_state",
    help: "1 for each registered version's current state (unloaded, loading, loaded, unloading, failed)",
    labelNames: ["model", "version", "state"],
    registers: [registry],
    collect() {
      this.reset();
      for (const m of d.models.list()) for (const v of d.models.versions(m.id)) this.set({ model: m.id, version: String(v.version), state: v.state }, 1);
    },
  });
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
    text(): Promise<string> {
      readChangeLog();
      return registry.metrics();
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
