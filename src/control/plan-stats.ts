/**
 * Each replica's window figures per planned route, read from the gateway's own
 * metrics (nothing extra on the request path): every tick takes the change of
 * the cumulative counters since the last tick. The figures travel as JSON on
 * NATS subject `turnout.stats` so the leader can sum all replicas.
 */

import { DURATION_BUCKETS } from "../observability/buckets.js";
import type { GatewayMetrics } from "../observability/metrics.js";
import { emptyFigures, type WindowFigures } from "./plan-evaluate.js";

export const STATS_SUBJECT = "turnout.stats";

/** One replica's report: figures per route since its previous report. */
export interface StatsReport {
  readonly replica: string;
  readonly routes: Record<string, WindowFigures>;
  /**
   * Per route, the revision of the cutover value the replica served by over
   * the whole interval (0: routes.yaml's values; MIXED: it changed meanwhile),
   * so the leader judges a window on figures of its split alone. Absent from
   * reports of versions before it: counted as they always were.
   */
  readonly revisions?: Record<string, number>;
  /**
   * The upper bounds (ms) of the latency buckets: a replica on another
   * routes.yaml has other plan gates among them. Absent: DURATION_BUCKETS's.
   */
  readonly bounds?: readonly number[];
}

/** A report interval over which the replica's cutover value changed. */
export const MIXED = -1;

/** Bucket upper bounds (ms) of the NATS latency figures: those of the duration histogram. */
export function latencyBoundsMs(metrics: GatewayMetrics): number[] {
  return metrics.duration.buckets.map(secondsToMs);
}

/** Rounded to the µs: 2.007 * 1000 is 2007.0000000000002, which a 2007 ms gate would fail. */
function secondsToMs(seconds: number): number {
  return Math.round(seconds * 1e6) / 1e3;
}

/** The bounds of reports that carry none (versions before plan gates became bounds). */
const DEFAULT_BOUNDS_MS = DURATION_BUCKETS.map(secondsToMs);

/** Whether a report's latency buckets are `bounds`, so that its counts add up bucket by bucket. */
export function sameBounds(report: StatsReport, bounds: readonly number[]): boolean {
  const theirs = report.bounds ?? DEFAULT_BOUNDS_MS;
  return theirs.length === bounds.length && theirs.every((bound, i) => bound === bounds[i]);
}

export class LocalStats {
  readonly #metrics: GatewayMetrics;
  readonly #routes: readonly string[];
  readonly #revisionOf: (route: string) => number;
  #previous = new Map<string, WindowFigures>();
  #previousRevisions = new Map<string, number>();

  /** `revisionOf`: the revision of the cutover value the replica serves the route by now. */
  constructor(
    metrics: GatewayMetrics,
    routes: readonly string[],
    revisionOf: (route: string) => number,
  ) {
    this.#metrics = metrics;
    this.#routes = routes;
    this.#revisionOf = revisionOf;
    this.#previous = this.#totals();
    this.#previousRevisions = this.#revisions();
  }

  /** The figures since the previous call (the first call: since construction). */
  take(): Pick<StatsReport, "routes" | "revisions"> {
    const totals = this.#totals();
    const revisions = this.#revisions();
    const routes: Record<string, WindowFigures> = {};
    const served: Record<string, number> = {};
    for (const [route, now] of totals) {
      const before = this.#previous.get(route);
      routes[route] = before === undefined ? now : subtract(now, before);
      const revision = revisions.get(route)!;
      // A value applied just before this tick may have served a request just before it too.
      served[route] = revision === this.#previousRevisions.get(route) ? revision : MIXED;
    }
    this.#previous = totals;
    this.#previousRevisions = revisions;
    return { routes, revisions: served };
  }

  #revisions(): Map<string, number> {
    return new Map(this.#routes.map((route) => [route, this.#revisionOf(route)]));
  }

  #totals(): Map<string, WindowFigures> {
    const buckets = this.#metrics.duration.buckets.length;
    const totals = new Map(this.#routes.map((r) => [r, emptyFigures(buckets)]));
    for (const { labels, value } of this.#metrics.requests.get().values) {
      const figures = totals.get(String(labels.route));
      if (figures === undefined || labels.backend !== "nats") continue;
      figures.requests += value;
      if (Number(labels.code) >= 500) figures.errors += value;
    }
    // A request NATS could not serve was routed to NATS and failed there.
    for (const { labels, value } of this.#metrics.fallbacks.get().values) {
      const figures = totals.get(String(labels.route));
      if (figures === undefined) continue;
      figures.requests += value;
      figures.errors += value;
    }
    for (const { labels, value } of this.#metrics.shadow.get().values) {
      const figures = totals.get(String(labels.route));
      if (figures === undefined) continue;
      if (labels.result === "match" || labels.result === "mismatch") figures.compared += value;
      if (labels.result === "mismatch") figures.mismatches += value;
    }
    for (const [route, figures] of totals) {
      const cell = this.#metrics.duration.cell(route, "nats");
      let counted = 0;
      for (let i = 0; i < buckets; i++) {
        figures.latency[i] = cell.counts[i]!;
        counted += cell.counts[i]!;
      }
      figures.latency[buckets] = cell.count - counted;
    }
    return totals;
  }
}

function subtract(now: WindowFigures, before: WindowFigures): WindowFigures {
  return {
    requests: now.requests - before.requests,
    errors: now.errors - before.errors,
    compared: now.compared - before.compared,
    mismatches: now.mismatches - before.mismatches,
    latency: now.latency.map((c, i) => c - (before.latency[i] ?? 0)),
  };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeReport(report: StatsReport): Uint8Array {
  return encoder.encode(JSON.stringify(report));
}

/** The report in a message, or undefined when it is not a well-formed one. */
export function decodeReport(data: Uint8Array): StatsReport | undefined {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(data));
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.replica !== "string" || typeof v.routes !== "object" || v.routes === null) {
    return undefined;
  }
  const routes: Record<string, WindowFigures> = {};
  for (const [route, raw] of Object.entries(v.routes as Record<string, unknown>)) {
    if (typeof raw !== "object" || raw === null) continue;
    const f = raw as Record<string, unknown>;
    const counts = [f.requests, f.errors, f.compared, f.mismatches];
    if (!counts.every(isCount) || !Array.isArray(f.latency) || !f.latency.every(isCount)) continue;
    routes[route] = {
      requests: f.requests as number,
      errors: f.errors as number,
      compared: f.compared as number,
      mismatches: f.mismatches as number,
      latency: f.latency as number[],
    };
  }
  const revisions = decodeRevisions(v.revisions);
  const bounds = Array.isArray(v.bounds) && v.bounds.every(isCount) ? v.bounds : undefined;
  return {
    replica: v.replica,
    routes,
    ...(revisions === undefined ? {} : { revisions }),
    // Malformed bounds match none: the report's latencies are not summed.
    ...(v.bounds === undefined ? {} : { bounds: bounds ?? [] }),
  };
}

/** Undefined when absent; a route whose revision is not an integer counts as MIXED. */
function decodeRevisions(raw: unknown): Record<string, number> | undefined {
  if (raw === undefined) return undefined;
  const revisions: Record<string, number> = {};
  if (typeof raw !== "object" || raw === null) return revisions;
  for (const [route, revision] of Object.entries(raw as Record<string, unknown>)) {
    revisions[route] = Number.isSafeInteger(revision) ? (revision as number) : MIXED;
  }
  return revisions;
}

/**
 * Whether a report's figures for `route` were all served by the value at
 * `revision`: a report without revisions (an older replica) is taken as so.
 */
export function servedBy(report: StatsReport, route: string, revision: number): boolean {
  return report.revisions === undefined || report.revisions[route] === revision;
}

function isCount(value: unknown): boolean {
  return typeof value === "number" && Number.isFinite(value) && value >= 0;
}
