/**
 * `npm run bench`: every scenario in bench/lib/scenarios.ts on loopback, under
 * the same load (wrk -t1 -c50 with --latency, or the raw NATS client), a warm-up
 * then `--runs` measured runs each, the median reported with the CPU that the
 * scenario's processes spent per request. Prints a table and the gateway/echo
 * ratio, and writes bench/results/latest.json.
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
import { SCENARIOS, type Scenario } from "./lib/scenarios.js";
import { fixed, formatTable, median, thousands } from "./lib/stats.js";
import { WRK_INSTALL_HINT, wrkAvailable, wrkVersion } from "./lib/wrk.js";

const BASELINE = "fastify-echo";
const GATEWAY = "gateway-nats";
const TARGET_RATIO = 0.5;
const WARMUP_S = 2;
const THREADS = 1;
const CONNECTIONS = 50;

const USAGE = `usage: node dist/bench/run.js [--duration S] [--runs N] [--only name,name]

  --duration S   seconds per measured run (default 10, env BENCH_DURATION)
  --runs N       measured runs per scenario, the median is reported (default 3, env BENCH_RUNS)
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
  median?: { rps: number; p50Ms: number; p99Ms: number; cpuUsPerReq: number };
  ratioVsBaseline?: number;
  runs: RunFigures[];
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
  const durationS = positiveInt("--duration", values.duration ?? process.env["BENCH_DURATION"], 10);
  const runs = positiveInt("--runs", values.runs ?? process.env["BENCH_RUNS"], 3);
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

function runLine(i: number, runs: number, r: RunFigures): string {
  const by = Object.entries(r.cpuByProcess)
    .map(([name, us]) => `${name} ${fixed(us, 1)}`)
    .join(", ");
  const errors = r.errors > 0 ? `  ERRORS: ${r.errorDetail ?? r.errors}` : "";
  return (
    `  run ${i}/${runs}: ${thousands(r.rps)} req/s  p50 ${fixed(r.p50Ms, 2)} ms` +
    `  p99 ${fixed(r.p99Ms, 2)} ms  CPU ${fixed(r.cpuUsPerReq, 1)} µs/req (${by})${errors}`
  );
}

async function runScenario(
  scenario: Scenario,
  options: { durationS: number; runs: number; tmpDir: string; ticksPerS: number },
): Promise<ScenarioResult> {
  const root = repoRoot();
  const result: ScenarioResult = {
    name: scenario.name,
    description: scenario.description,
    status: "ok",
    runs: [],
  };
  const scope = new Scope();
  currentScope = scope;
  const logDir = join(options.tmpDir, scenario.name);
  mkdirSync(logDir, { recursive: true });
  const ctx = { scope, root, logDir };
  say(`\n== ${scenario.name}: ${scenario.description}`);
  const skip = scenario.skip?.(ctx);
  if (skip !== undefined) {
    say(`  skipped: ${skip}`);
    return { ...result, status: "skipped", reason: skip };
  }
  try {
    const running = await scenario.start(ctx);
    result.target = describeTarget(running.load);
    say(`  load: ${result.target}`);
    const load: LoadOptions = {
      durationS: WARMUP_S,
      threads: THREADS,
      connections: CONNECTIONS,
      tmpDir: options.tmpDir,
    };
    say(`  warm-up ${WARMUP_S} s`);
    await runLoad(running.load, load);
    for (let i = 1; i <= options.runs; i++) {
      const names = Object.keys(running.cpu);
      const trees = () => names.map((n) => withDescendants([running.cpu[n]!]));
      const before = trees().map(snapshotCpu);
      const figures = await runLoad(running.load, { ...load, durationS: options.durationS });
      const after = trees().map(snapshotCpu);
      const perRequest = (ticks: number) => ((ticks / options.ticksPerS) * 1e6) / figures.requests;
      const cpuByProcess: Record<string, number> = {};
      names.forEach((n, j) => {
        cpuByProcess[n] = perRequest(cpuTicksBetween(before[j]!, after[j]!));
      });
      const cpuUsPerReq = Object.values(cpuByProcess).reduce((a, b) => a + b, 0);
      const run = { ...figures, cpuUsPerReq, cpuByProcess };
      result.runs.push(run);
      say(runLine(i, options.runs, run));
    }
    const pick = (f: (r: RunFigures) => number) => median(result.runs.map(f));
    result.median = {
      rps: pick((r) => r.rps),
      p50Ms: pick((r) => r.p50Ms),
      p99Ms: pick((r) => r.p99Ms),
      cpuUsPerReq: pick((r) => r.cpuUsPerReq),
    };
    const errors = result.runs.reduce((sum, r) => sum + r.errors, 0);
    if (errors > 0) {
      result.status = "invalid";
      result.reason = `${errors} failed requests`;
    }
  } catch (err) {
    result.status = "error";
    result.reason = (err as Error).message;
    say(`  error: ${result.reason}`);
  } finally {
    await scope.close();
    currentScope = undefined;
  }
  return result;
}

function report(results: ScenarioResult[]): { line: string; ratio: number | undefined } {
  const baseline = results.find((r) => r.name === BASELINE && r.status === "ok")?.median?.rps;
  for (const r of results) {
    if (baseline !== undefined && r.median !== undefined) {
      r.ratioVsBaseline = r.median.rps / baseline;
    }
  }
  const rows = results.map((r) => {
    const m = r.median;
    const reason = (r.reason ?? "").split("\n")[0] ?? "";
    const short = reason.length > 60 ? `${reason.slice(0, 57)}...` : reason;
    const note = r.status === "ok" ? "" : `${r.status}${short === "" ? "" : `: ${short}`}`;
    return [
      r.name,
      thousands(m?.rps),
      fixed(m?.p50Ms, 2),
      fixed(m?.p99Ms, 2),
      fixed(m?.cpuUsPerReq, 1),
      fixed(r.ratioVsBaseline, 2),
      note,
    ];
  });
  say(
    `\n${formatTable(["scenario", "req/s", "p50 ms", "p99 ms", "CPU µs/req", `vs ${BASELINE}`, "note"], rows, [0, 6])}`,
  );
  const gateway = results.find((r) => r.name === GATEWAY);
  const ok = gateway?.status === "ok" && gateway.ratioVsBaseline !== undefined;
  const ratio = ok ? gateway.ratioVsBaseline : undefined;
  const why =
    gateway === undefined
      ? "not run"
      : gateway.status !== "ok"
        ? gateway.status
        : `${BASELINE} did not run`;
  const value = ratio === undefined ? `n/a (${GATEWAY} ${why})` : ratio.toFixed(2);
  const line = `${GATEWAY} / ${BASELINE} = ${value} (target >= ${TARGET_RATIO})`;
  say(`\n${line}`);
  return { line, ratio };
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
  const needsNats = cli.only.some((s) => s.name !== BASELINE);
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
      `${cpus().length} CPUs`,
  );

  const loadAtStart = loadavg()[0] ?? 0;
  if (loadAtStart > 0.5) {
    say(
      `warning: load average ${loadAtStart.toFixed(2)} before the start: other processes use the ` +
        "CPU, so the figures will be noisy (compare ratios from one run, or rerun on an idle machine)",
    );
  }

  const results: ScenarioResult[] = [];
  for (const scenario of cli.only) {
    if (interrupted) break;
    results.push(
      await runScenario(scenario, { durationS: cli.durationS, runs: cli.runs, tmpDir, ticksPerS }),
    );
  }
  if (interrupted) return 130;
  const { line, ratio } = report(results);

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
      loadAvgAtEnd: loadavg()[0] ?? 0,
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
    ratio: { name: `${GATEWAY}/${BASELINE}`, value: ratio ?? null, target: TARGET_RATIO, line },
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
