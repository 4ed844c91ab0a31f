/**
 * `npm run bench`: every scenario in bench/lib/scenarios.ts on loopback, under
 * the same load (wrk -t1 -c50 with --latency, or the raw NATS client), a warm-up
 * then `--runs` measured runs each, the median reported with the CPU that the
 * scenario's processes spent per request (in all and process by process).
 * Prints a table and the ratio lines (bench/lib/ratios.ts), and writes
 * bench/results/latest.json.
 *
 *   node dist/bench/run.js [--duration S] [--runs N] [--only a,b]
 *
 * Every process it starts is stopped at the end, on error, or on Ctrl-C.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { natsServerAvailable } from "../src/devtools/nats-server.js";
import { clockTicksPerSecond, cpuTicksBetween, snapshotCpu, withDescendants } from "./lib/cpu.js";
import { describeTarget, type LoadOptions, type LoadResult, runLoad } from "./lib/load.js";
import { USER_JSON } from "./lib/payload.js";
import { killAllNow, repoRoot, Scope } from "./lib/processes.js";
import {
  BASELINE,
  type HalfLoadFigures,
  type RatioLine,
  ratioLines,
  rpsRatio,
  SPLIT,
  TARGET_VS_ECHO,
} from "./lib/ratios.js";
import {
  interleavedGroups,
  type RunningScenario,
  SCENARIOS,
  type Scenario,
} from "./lib/scenarios.js";
import { splitDecisionNs } from "./lib/split-micro.js";
import { fixed, formatTable, median, thousands } from "./lib/stats.js";
import { pacingDelayMs, WRK_INSTALL_HINT, wrkAvailable, wrkVersion } from "./lib/wrk.js";

const WARMUP_S = 2;
const THREADS = 1;
const CONNECTIONS = 50;
/**
 * Many short runs rather than a few long ones: the runs of compared scenarios
 * alternate, and this VM's speed drifts by 2x or more within minutes, so a pair
 * measured seconds apart agrees better, and a median of 7 pair ratios moves
 * less than one of 3. About 30 s measured per scenario either way.
 */
const DEFAULT_DURATION_S = 4;
const DEFAULT_RUNS = 7;
/** The paced run's share of the median req/s, and its probe's length. */
const HALF = 0.5;
const PACING_PROBE_S = 2;

const USAGE = `usage: node dist/bench/run.js [--duration S] [--runs N] [--only name,name]

  --duration S   seconds per measured run (default ${DEFAULT_DURATION_S}, env BENCH_DURATION)
  --runs N       measured runs per scenario, the median is reported (default ${DEFAULT_RUNS}, env BENCH_RUNS)
  --only LIST    run only these scenarios (${SCENARIOS.map((s) => s.name).join(", ")})`;

interface RunFigures extends LoadResult {
  /** CPU µs per request, all the scenario's processes together (not the load generator). */
  cpuUsPerReq: number;
  /** The same, process by process. */
  cpuByProcess: Record<string, number>;
}

interface ScenarioResult {
  name: string;
  description: string;
  status: "ok" | "skipped" | "error" | "invalid";
  reason?: string;
  target?: string;
  median?: {
    rps: number;
    p50Ms: number;
    p99Ms: number;
    cpuUsPerReq: number;
    /** Median of each process's CPU µs/req over the runs. */
    cpuByProcess: Record<string, number>;
  };
  ratioVsBaseline?: number;
  /** The scenario's own check after the runs (e.g. which side the gateway served). */
  check?: string;
  /** What the table's note column shows for a valid scenario (from its check). */
  note?: string;
  /** The scenarios whose runs alternated with this one's. */
  interleavedWith?: string[];
  runs: RunFigures[];
  /** The paced run at about half of the median req/s (scenarios with `halfLoad`). */
  halfLoad?: HalfLoadFigures & { delayMs: number };
}

function positiveInt(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) {
    throw new UsageError(`${name} must be a whole number >= 1, got "${text}"`);
  }
  return value;
}

class UsageError extends Error {}

function parseCli(argv: string[]): { durationS: number; runs: number; only: Scenario[] } {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: "string" },
      runs: { type: "string" },
      only: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const durationS = positiveInt(
    "--duration",
    values.duration ?? process.env["BENCH_DURATION"],
    DEFAULT_DURATION_S,
  );
  const runs = positiveInt("--runs", values.runs ?? process.env["BENCH_RUNS"], DEFAULT_RUNS);
  let only = [...SCENARIOS];
  if (values.only !== undefined) {
    const names = values.only.split(",").map((n) => n.trim());
    const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
    if (unknown.length > 0) throw new UsageError(`unknown scenario(s): ${unknown.join(", ")}`);
    only = SCENARIOS.filter((s) => names.includes(s.name));
  }
  return { durationS, runs, only };
}

// --- cleanup on error and Ctrl-C -------------------------------------------

let currentScope: Scope | undefined;
let tmpDir: string | undefined;
let interrupted = false;

function removeTmpDir(): void {
  if (tmpDir !== undefined) rmSync(tmpDir, { recursive: true, force: true });
  tmpDir = undefined;
}

process.on("exit", () => {
  killAllNow();
  removeTmpDir();
});

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (interrupted) {
      // Second Ctrl-C: no more waiting.
      killAllNow();
      process.exit(130);
    }
    interrupted = true;
    process.stderr.write(`\nbench: ${signal}, stopping every process started...\n`);
    const scope = currentScope ?? new Scope();
    void scope.close(4000).finally(() => process.exit(130));
  });
}

// --- running ------------------------------------------------------------------

function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

function runLine(label: string, i: number, runs: number, r: RunFigures): string {
  const by = Object.entries(r.cpuByProcess)
    .map(([name, us]) => `${name} ${fixed(us, 1)}`)
    .join(", ");
  const errors = r.errors > 0 ? `  ERRORS: ${r.errorDetail ?? r.errors}` : "";
  return (
    `  ${label}run ${i}/${runs}: ${thousands(r.rps)} req/s  p50 ${fixed(r.p50Ms, 2)} ms` +
    `  p99 ${fixed(r.p99Ms, 2)} ms  CPU ${fixed(r.cpuUsPerReq, 1)} µs/req (${by})${errors}`
  );
}

interface RunOptions {
  durationS: number;
  runs: number;
  tmpDir: string;
  ticksPerS: number;
}

/** A scenario of a group, started: its result so far and what it runs. */
interface Active {
  scenario: Scenario;
  result: ScenarioResult;
  running: RunningScenario;
  /** "" alone; the scenario's name in an interleaved group, before each of its lines. */
  label: string;
}

function fail(result: ScenarioResult, label: string, err: unknown): void {
  result.status = "error";
  result.reason = (err as Error).message;
  say(`  ${label}error: ${result.reason}`);
}

/** One measured run of `a`: the load, and the CPU its processes spent meanwhile. */
async function measure(a: Active, load: LoadOptions, ticksPerS: number): Promise<RunFigures> {
  const names = Object.keys(a.running.cpu);
  const trees = () => names.map((n) => withDescendants([a.running.cpu[n]!]));
  const before = trees().map(snapshotCpu);
  const figures = await runLoad(a.running.load, load);
  const after = trees().map(snapshotCpu);
  const perRequest = (ticks: number) => ((ticks / ticksPerS) * 1e6) / figures.requests;
  const cpuByProcess: Record<string, number> = {};
  names.forEach((n, j) => {
    cpuByProcess[n] = perRequest(cpuTicksBetween(before[j]!, after[j]!));
  });
  const cpuUsPerReq = Object.values(cpuByProcess).reduce((a, b) => a + b, 0);
  return { ...figures, cpuUsPerReq, cpuByProcess };
}

/**
 * One more run of `a`, each connection pausing between requests so that the
 * rate is about half of the measured runs' median: p99 against p50 there shows
 * queueing or stalls that a saturated run hides in its own queue. A short
 * paced probe first measures the latency that each connection's cycle adds to
 * its pause.
 */
async function measureHalfLoad(a: Active, load: LoadOptions): Promise<void> {
  const maxRps = median(a.result.runs.map((r) => r.rps));
  const probeDelayMs = pacingDelayMs(maxRps, load.connections, HALF);
  const probe = await runLoad(a.running.load, {
    ...load,
    durationS: PACING_PROBE_S,
    delayMs: probeDelayMs,
  });
  const latencyMs = (load.connections * 1000) / probe.rps - probeDelayMs;
  const delayMs = pacingDelayMs(maxRps, load.connections, HALF, latencyMs);
  const run = await runLoad(a.running.load, { ...load, delayMs });
  const errors = probe.errors + run.errors;
  if (errors > 0) {
    throw new Error(
      `${errors} failed requests at half load: ${run.errorDetail ?? probe.errorDetail}`,
    );
  }
  const ofMax = run.rps / maxRps;
  a.result.halfLoad = { rps: run.rps, ofMax, p50Ms: run.p50Ms, p99Ms: run.p99Ms, delayMs };
  say(
    `  ${a.label}half load (each connection pauses ${delayMs} ms): ${thousands(run.rps)} req/s ` +
      `= ${fixed(ofMax, 2)} of the median, p50 ${fixed(run.p50Ms, 2)} ms  p99 ${fixed(run.p99Ms, 2)} ms`,
  );
}

/** Medians of the runs, then the scenario's own check; failed requests or a problem: invalid. */
async function finish(a: Active): Promise<void> {
  const { result, running } = a;
  const pick = (f: (r: RunFigures) => number) => median(result.runs.map(f));
  const cpuByProcess: Record<string, number> = {};
  for (const n of Object.keys(running.cpu)) cpuByProcess[n] = pick((r) => r.cpuByProcess[n]!);
  result.median = {
    rps: pick((r) => r.rps),
    p50Ms: pick((r) => r.p50Ms),
    p99Ms: pick((r) => r.p99Ms),
    cpuUsPerReq: pick((r) => r.cpuUsPerReq),
    cpuByProcess,
  };
  const problems: string[] = [];
  const errors = result.runs.reduce((sum, r) => sum + r.errors, 0);
  if (errors > 0) problems.push(`${errors} failed requests`);
  if (running.check !== undefined) {
    const checked = await running.check();
    result.check = checked.summary;
    if (checked.note !== undefined) result.note = checked.note;
    const problem = checked.problem === undefined ? "" : `  PROBLEM: ${checked.problem}`;
    say(`  ${a.label}check: ${checked.summary}${problem}`);
    if (checked.problem !== undefined) problems.push(checked.problem);
  }
  if (problems.length > 0) {
    result.status = "invalid";
    result.reason = problems.join("; ");
  }
}

/**
 * Runs a group of scenarios (usually one): starts them all, warms each up, then
 * alternates their measured runs (A B, B A, A B, ...), so that a pair compared
 * with each other sees the same background load; stops them all at the end.
 */
async function runGroup(
  group: readonly Scenario[],
  options: RunOptions,
): Promise<ScenarioResult[]> {
  const root = repoRoot();
  const scope = new Scope();
  currentScope = scope;
  const results: ScenarioResult[] = [];
  const active: Active[] = [];
  const interleaved = group.length > 1;
  const load: LoadOptions = {
    durationS: WARMUP_S,
    threads: THREADS,
    connections: CONNECTIONS,
    tmpDir: options.tmpDir,
  };
  try {
    for (const scenario of group) {
      const result: ScenarioResult = {
        name: scenario.name,
        description: scenario.description,
        status: "ok",
        runs: [],
      };
      results.push(result);
      const others = group.filter((s) => s !== scenario).map((s) => s.name);
      if (interleaved) result.interleavedWith = others;
      const label = interleaved ? `${scenario.name}: ` : "";
      const logDir = join(options.tmpDir, scenario.name);
      mkdirSync(logDir, { recursive: true });
      const ctx = { scope, root, logDir };
      const runsWith = interleaved ? ` (runs interleaved with ${others.join(", ")})` : "";
      say(`\n== ${scenario.name}: ${scenario.description}${runsWith}`);
      const skip = scenario.skip?.(ctx);
      if (skip !== undefined) {
        say(`  skipped: ${skip}`);
        result.status = "skipped";
        result.reason = skip;
        continue;
      }
      try {
        const running = await scenario.start(ctx);
        result.target = describeTarget(running.load);
        say(`  load: ${result.target}`);
        active.push({ scenario, result, running, label });
      } catch (err) {
        fail(result, "", err);
      }
    }
    if (interleaved && active.length > 0) say("");
    const ok = () => active.filter((a) => a.result.status === "ok");
    for (const a of ok()) {
      say(`  ${a.label}warm-up ${WARMUP_S} s`);
      await runLoad(a.running.load, load).catch((err: unknown) => fail(a.result, a.label, err));
    }
    for (let i = 1; i <= options.runs && !interrupted; i++) {
      const order = i % 2 === 1 ? ok() : ok().reverse();
      for (const a of order) {
        try {
          const run = await measure(
            a,
            { ...load, durationS: options.durationS },
            options.ticksPerS,
          );
          a.result.runs.push(run);
          say(runLine(a.label, i, options.runs, run));
        } catch (err) {
          fail(a.result, a.label, err);
        }
      }
    }
    for (const a of ok()) {
      if (a.scenario.halfLoad !== true || interrupted) continue;
      await measureHalfLoad(a, { ...load, durationS: options.durationS }).catch((err: unknown) =>
        fail(a.result, a.label, err),
      );
    }
    for (const a of ok()) await finish(a).catch((err: unknown) => fail(a.result, a.label, err));
  } finally {
    await scope.close();
    currentScope = undefined;
  }
  return results;
}

function cpuBreakdown(byProcess: Record<string, number> | undefined): string {
  if (byProcess === undefined) return "";
  return Object.entries(byProcess)
    .map(([name, us]) => `${name} ${fixed(us, 1)}`)
    .join(", ");
}

function report(results: ScenarioResult[], decisionNs: number | undefined): RatioLine[] {
  const baseline = results.find((r) => r.name === BASELINE && r.status === "ok");
  for (const r of results) {
    if (baseline?.median !== undefined && r.median !== undefined) {
      r.ratioVsBaseline = rpsRatio(r, baseline);
    }
  }
  const rows = results.map((r) => {
    const m = r.median;
    const reason = (r.reason ?? "").split("\n")[0] ?? "";
    const short = reason.length > 60 ? `${reason.slice(0, 57)}...` : reason;
    const note =
      r.status === "ok" ? (r.note ?? "") : `${r.status}${short === "" ? "" : `: ${short}`}`;
    return [
      r.name,
      thousands(m?.rps),
      fixed(m?.p50Ms, 2),
      fixed(m?.p99Ms, 2),
      fixed(m?.cpuUsPerReq, 1),
      fixed(r.ratioVsBaseline, 2),
      cpuBreakdown(m?.cpuByProcess),
      note,
    ];
  });
  const header = [
    "scenario",
    "req/s",
    "p50 ms",
    "p99 ms",
    "CPU µs/req",
    `vs ${BASELINE}`,
    "CPU µs/req by process",
    "note",
  ];
  say(`\n${formatTable(header, rows, [0, 6, 7])}\n`);
  const lines = ratioLines(results, decisionNs);
  for (const l of lines) say(l.line);
  return lines;
}

function toolVersion(command: string, args: string[]): string {
  const out = spawnSync(command, args, { encoding: "utf8", timeout: 5000 });
  return `${out.stdout ?? ""}${out.stderr ?? ""}`.split("\n")[0]?.trim() ?? "";
}

async function main(): Promise<number> {
  let cli: ReturnType<typeof parseCli>;
  try {
    cli = parseCli(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (!wrkAvailable()) {
    process.stderr.write(`bench: wrk not found on PATH; ${WRK_INSTALL_HINT}\n`);
    return 1;
  }
  if (process.platform !== "linux") {
    process.stderr.write("bench: needs Linux (/proc/<pid>/stat for CPU time)\n");
    return 1;
  }
  const needsNats = cli.only.some((s) => s.usesNats);
  if (needsNats && !natsServerAvailable()) {
    process.stderr.write(
      "bench: nats-server not found; install it with: sudo apt-get install -y nats-server\n",
    );
    return 1;
  }

  const root = repoRoot();
  const ticksPerS = clockTicksPerSecond();
  tmpDir = mkdtempSync(join(tmpdir(), "turnout-bench-"));
  say(
    `turnout bench: ${cli.runs} run(s) x ${cli.durationS} s per scenario after a ${WARMUP_S} s warm-up, ` +
      `${THREADS} thread, ${CONNECTIONS} connections, ${USER_JSON.length}-byte JSON body, 127.0.0.1, ` +
      `${cpus().length} CPUs (${cpus()[0]?.model ?? "unknown model"}, Linux ${release()})`,
  );

  const loadAtStart = loadavg()[0] ?? 0;
  if (loadAtStart > 0.5) {
    say(
      `warning: load average ${loadAtStart.toFixed(2)} before the start: other processes use the ` +
        "CPU, so the figures will be noisy (compare ratios from one run, or rerun on an idle machine)",
    );
  }

  const results: ScenarioResult[] = [];
  for (const group of interleavedGroups(cli.only)) {
    if (interrupted) break;
    results.push(
      ...(await runGroup(group, { durationS: cli.durationS, runs: cli.runs, tmpDir, ticksPerS })),
    );
  }
  if (interrupted) return 130;
  const decisionNs = cli.only.some((s) => s.name === SPLIT) ? splitDecisionNs() : undefined;
  const lines = report(results, decisionNs);
  const loadAtEnd = loadavg()[0] ?? 0;
  say(
    `load average (1 min): ${loadAtStart.toFixed(2)} at the start, ${loadAtEnd.toFixed(2)} at the end`,
  );
  const first = lines[0]!;

  const file = join(root, "bench", "results", "latest.json");
  mkdirSync(join(root, "bench", "results"), { recursive: true });
  const json = {
    schema: 1,
    date: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? "",
      kernel: release(),
      loadAvgAtStart: loadAtStart,
      loadAvgAtEnd: loadAtEnd,
    },
    tools: {
      node: process.version,
      wrk: wrkVersion(),
      natsServer: toolVersion("nats-server", ["--version"]),
    },
    settings: {
      durationS: cli.durationS,
      runs: cli.runs,
      warmupS: WARMUP_S,
      threads: THREADS,
      connections: CONNECTIONS,
      bodyBytes: USER_JSON.length,
      clockTicksPerS: ticksPerS,
      cpuCounts: "utime+stime of the scenario's server processes (not the load generator)",
    },
    scenarios: results,
    ratio: { name: first.name, value: first.value, target: TARGET_VS_ECHO, line: first.line },
    ratios: lines,
  };
  writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
  say(`results: ${file}`);
  return results.some((r) => r.status === "error" || r.status === "invalid") ? 1 : 0;
}

main().then(
  (code) => {
    removeTmpDir();
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(
      `bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exitCode = 1;
  },
);
