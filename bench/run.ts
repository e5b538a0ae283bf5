// npm run bench: every benchmark, printed as markdown. Not a CI gate: targets
// are printed next to the figures, never asserted.
import { benchBatching } from "./batching.bench";
import { benchInference } from "./inference.bench";
import { benchLoad } from "./load.bench";
import { benchMemory } from "./memory.bench";
import { benchMetrics } from "./metrics.bench";
import { benchFloor } from "./floor.bench";
import { benchGrpc } from "./grpc.bench";
import { benchProfile } from "./profile.bench";
import { benchRuntimes } from "./runtimes.bench";
import { benchStartup } from "./startup.bench";
import { benchSwap } from "./swap.bench";

console.log(`# modeld benchmarks\n\n${new Date().toISOString()}, Bun ${Bun.version}, ${navigator.hardwareConcurrency} cores`);
const only = process.argv[2];
if (!only || only === "load") await benchLoad();
if (!only || only === "inference") await benchInference();
if (!only || only === "batching") await benchBatching();
if (!only || only === "profile") await benchProfile();
if (!only || only === "floor") await benchFloor();
if (!only || only === "grpc") await benchGrpc();
if (!only || only === "startup") await benchStartup();
if (!only || only === "swap") await benchSwap();
if (!only || only === "memory") await benchMemory();
if (!only || only === "metrics") await benchMetrics();
if (!only || only === "runtimes") await benchRuntimes();
