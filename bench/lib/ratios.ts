/**
 * The lines printed under the table: ratios between scenarios of one run, each
 * against its target. Pure: from the scenarios' medians (and runs, for the
 * noise), to text.
 */

export interface RunPoint {
  readonly rps: number;
  readonly cpuUsPerReq: number;
}

export interface ScenarioFigures {
  readonly name: string;
  readonly status: "ok" | "skipped" | "error" | "invalid";
  readonly median?: RunPoint | undefined;
  readonly runs: readonly RunPoint[];
  /** The scenarios whose runs alternated with this one's (run i of each back to back). */
  readonly interleavedWith?: readonly string[] | undefined;
  /** One more run after the measured ones, paced to about half of the median req/s. */
  readonly halfLoad?: HalfLoadFigures | undefined;
}

export interface HalfLoadFigures {
  readonly rps: number;
  /** `rps` over the scenario's median req/s at full load. */
  readonly ofMax: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export interface RatioLine {
  readonly name: string;
  /** The ratio, or the cost in % for a difference; null when a scenario is missing. */
  readonly value: number | null;
  /** Second figure of a difference line (CPU/req), else absent. */
  readonly cpuValue?: number | null;
  readonly target: string;
  /** Whether the target is met; null when the value is missing or there is no target. */
  readonly met: boolean | null;
  readonly line: string;
}

export const BASELINE = "fastify-echo";
export const GATEWAY = "gateway-nats";
/** The same with `--workers 2`: one gateway process per core of this machine. */
export const GATEWAY_2W = "gateway-nats-2w";
export const LEGACY = "gateway-legacy";
export const SPLIT = "gateway-nats-split";
export const SHADOW = "gateway-shadow";
/** The least an HTTP -> NATS gateway does (bench/floor-gateway.ts): the ceiling of gateway-nats. */
export const FLOOR = "nats-floor";
export const TARGET_VS_ECHO = 0.5;
export const TARGET_VS_LEGACY = 1.3;
/** Largest acceptable cost of the split decision, in % of req/s and of CPU/req. */
export const TARGET_SPLIT_COST = 5;
/** Largest acceptable p99 / p50 at half of the maximum throughput. */
export const TARGET_TAIL = 3;

type Find = (name: string) => ScenarioFigures | undefined;

/** Why `name` has no figure: "not run", its status, ... */
function missing(find: Find, name: string): string | undefined {
  const s = find(name);
  if (s === undefined) return `${name} not run`;
  if (s.status !== "ok" || s.median === undefined) return `${name} ${s.status}`;
  return undefined;
}

/**
 * `top`'s req/s over `bottom`'s against `target`; with a string instead of a
 * number, the line has no target and the string says what the ratio shows.
 */
function ratioLine(find: Find, top: string, bottom: string, target: number | string): RatioLine {
  const name = `${top} / ${bottom}`;
  const targetText = typeof target === "number" ? `>= ${target}` : "";
  const tail = typeof target === "number" ? `(target >= ${target})` : `(no target: ${target})`;
  const why = missing(find, top) ?? missing(find, bottom);
  if (why !== undefined) {
    return {
      name,
      value: null,
      target: targetText,
      met: null,
      line: `${name} = n/a (${why}) ${tail}`,
    };
  }
  const pairs = runPairRatios(find(top)!, find(bottom)!);
  const value = rpsRatio(find(top)!, find(bottom)!);
  const perPair =
    pairs === undefined
      ? ""
      : ` (median of run pairs: ${pairs.map((r) => r.toFixed(2)).join(" ")})`;
  return {
    name,
    value,
    target: targetText,
    met: typeof target === "number" ? value >= target : null,
    line: `${name} = ${value.toFixed(2)}${perPair} ${tail}`,
  };
}

/**
 * `top`'s req/s over `bottom`'s: the median of the run pairs' ratios when their
 * runs alternated, else the ratio of the medians. Both need a median.
 */
export function rpsRatio(top: ScenarioFigures, bottom: ScenarioFigures): number {
  const pairs = runPairRatios(top, bottom);
  return pairs === undefined ? top.median!.rps / bottom.median!.rps : median(pairs);
}

/**
 * When the two scenarios' runs alternated, the ratio of each run pair (run i
 * of each, back to back on the same machine state); otherwise undefined.
 */
function runPairRatios(top: ScenarioFigures, bottom: ScenarioFigures): number[] | undefined {
  const paired =
    top.interleavedWith?.includes(bottom.name) === true &&
    top.runs.length === bottom.runs.length &&
    top.runs.length > 0;
  return paired ? top.runs.map((run, i) => run.rps / bottom.runs[i]!.rps) : undefined;
}

/** "+1.2%" / "-0.4%". */
export function signedPercent(value: number): string {
  return `${value >= 0 ? "+" : "-"}${Math.abs(value).toFixed(1)}%`;
}

/**
 * What `after` costs relative to `before`, in %: req/s lost and CPU/req
 * added (both positive when `after` is dearer, negative when it came out
 * cheaper, i.e. within the noise).
 */
export function costPercent(before: RunPoint, after: RunPoint): { rps: number; cpu: number } {
  return {
    rps: (1 - after.rps / before.rps) * 100,
    cpu: (after.cpuUsPerReq / before.cpuUsPerReq - 1) * 100,
  };
}

/** Half the range of `values` as a % of their median: the run-to-run noise, "±x%". */
export function spreadPercent(values: readonly number[]): number | undefined {
  if (values.length < 2) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return ((sorted[sorted.length - 1]! - sorted[0]!) / 2 / median) * 100;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * The cost of `after` against `before`. When their runs alternated (run i of
 * each back to back, under the same background load), the median of the
 * per-pair costs, with each pair's cost as the noise; otherwise the cost
 * between the medians, with each scenario's run-to-run spread.
 */
export function pairedCost(
  before: ScenarioFigures,
  after: ScenarioFigures,
): { rps: number; cpu: number; noise: string } {
  const paired =
    after.interleavedWith?.includes(before.name) === true &&
    before.runs.length === after.runs.length &&
    before.runs.length > 0;
  if (paired) {
    const pairs = before.runs.map((b, i) => costPercent(b, after.runs[i]!));
    const list = (f: (c: { rps: number; cpu: number }) => number) =>
      pairs.map((c) => signedPercent(f(c))).join(" ");
    return {
      rps: median(pairs.map((c) => c.rps)),
      cpu: median(pairs.map((c) => c.cpu)),
      noise: `runs interleaved; per run pair: req/s ${list((c) => c.rps)}, CPU/req ${list((c) => c.cpu)}`,
    };
  }
  const cost = costPercent(before.median!, after.median!);
  const spread = (s: ScenarioFigures, f: (r: RunPoint) => number) => {
    const value = spreadPercent(s.runs.map(f));
    return value === undefined ? "n/a" : `±${value.toFixed(1)}%`;
  };
  return {
    ...cost,
    noise:
      `run-to-run spread (half range / median): req/s ${spread(before, (r) => r.rps)} ` +
      `(${before.name}), ${spread(after, (r) => r.rps)} (${after.name}); ` +
      `CPU/req ${spread(before, (r) => r.cpuUsPerReq)}, ${spread(after, (r) => r.cpuUsPerReq)}`,
  };
}

function splitLines(find: Find, decisionNs: number | undefined): RatioLine[] {
  const name = "split decision cost";
  const target = `< ${TARGET_SPLIT_COST}%`;
  const why = missing(find, GATEWAY) ?? missing(find, SPLIT);
  if (why !== undefined) {
    return [
      { name, value: null, cpuValue: null, target, met: null, line: `${name} = n/a (${why})` },
    ];
  }
  const cost = pairedCost(find(GATEWAY)!, find(SPLIT)!);
  const alone =
    decisionNs === undefined
      ? []
      : [
          {
            name: "split decision alone",
            value: decisionNs,
            target: "",
            met: null,
            line:
              `  (the decision alone, in-process: ${decisionNs.toFixed(0)} ns/request = ` +
              `${((decisionNs / 1000 / find(GATEWAY)!.median!.cpuUsPerReq) * 100).toFixed(3)}% ` +
              `of ${GATEWAY}'s CPU/req)`,
          },
        ];
  return [
    {
      name,
      value: cost.rps,
      cpuValue: cost.cpu,
      target,
      met: cost.rps < TARGET_SPLIT_COST && cost.cpu < TARGET_SPLIT_COST,
      line:
        `${name} = ${signedPercent(cost.rps)} req/s, ${signedPercent(cost.cpu)} CPU/req ` +
        `(target ${target})`,
    },
    {
      name: "split noise",
      value: null,
      target: "",
      met: null,
      line: `  (${SPLIT} against ${GATEWAY}, positive = dearer; ${cost.noise})`,
    },
    ...alone,
  ];
}

function shadowLine(find: Find): RatioLine {
  const name = "shadow cost";
  const why = missing(find, SPLIT) ?? missing(find, SHADOW);
  if (why !== undefined) {
    return { name, value: null, target: "", met: null, line: `${name} = n/a (${why})` };
  }
  const before = find(SPLIT)!.median!;
  const after = find(SHADOW)!.median!;
  const cost = costPercent(before, after);
  return {
    name,
    value: cost.rps,
    cpuValue: cost.cpu,
    target: "",
    met: null,
    line:
      `${name} = ${signedPercent(cost.rps)} req/s, ${signedPercent(cost.cpu)} CPU/req ` +
      `(${SHADOW} ${after.cpuUsPerReq.toFixed(1)} µs/req all processes vs ` +
      `${SPLIT} ${before.cpuUsPerReq.toFixed(1)}; no target)`,
  };
}

/**
 * The tail at half load: a gateway that queues or stalls shows it as a p99 far
 * above its p50 even while it has CPU to spare.
 */
function tailLine(find: Find, scenario: string): RatioLine {
  const name = `${scenario} p99 / p50 at half load`;
  const target = `<= ${TARGET_TAIL}`;
  const half = find(scenario)?.halfLoad;
  const why = missing(find, scenario) ?? (half === undefined ? "not measured" : undefined);
  if (why !== undefined || half === undefined) {
    return {
      name,
      value: null,
      target,
      met: null,
      line: `${name} = n/a (${why}) (target ${target})`,
    };
  }
  const value = half.p99Ms / half.p50Ms;
  return {
    name,
    value,
    target,
    met: value <= TARGET_TAIL,
    line:
      `${name} = ${value.toFixed(2)} (${Math.round(half.rps).toLocaleString("en-US")} req/s = ` +
      `${half.ofMax.toFixed(2)} of its median; p50 ${half.p50Ms.toFixed(2)} ms, ` +
      `p99 ${half.p99Ms.toFixed(2)} ms) (target ${target})`,
  };
}

/**
 * `decisionNs`: the split decision timed alone (split-micro.ts), shown under
 * the split line when given.
 */
export function ratioLines(results: readonly ScenarioFigures[], decisionNs?: number): RatioLine[] {
  const find: Find = (name) => results.find((r) => r.name === name);
  return [
    ratioLine(find, GATEWAY, BASELINE, TARGET_VS_ECHO),
    ratioLine(find, GATEWAY_2W, BASELINE, TARGET_VS_ECHO),
    ratioLine(find, GATEWAY, LEGACY, TARGET_VS_LEGACY),
    ratioLine(find, FLOOR, BASELINE, "the most a Node HTTP -> NATS route reaches here"),
    ratioLine(find, GATEWAY, FLOOR, "what the gateway keeps of it after its production work"),
    ...splitLines(find, decisionNs),
    shadowLine(find),
    tailLine(find, BASELINE),
    tailLine(find, GATEWAY),
    tailLine(find, GATEWAY_2W),
  ];
}
