/**
 * The plan's judgement of one window, pure: given the figures summed over all
 * replicas and the route's current NATS share, step up, hold or roll back.
 */
import type { CutoverPlan } from "../config/types.js";
import { PLAN_ROLLBACK_PREFIX } from "./plan-status.js";

/** One window's figures for a route, summed over replicas. */
export interface WindowFigures {
  /** Requests routed to NATS (answered by NATS, or fallen back to legacy). */
  requests: number;
  /** 5xx answers from NATS plus fallbacks to legacy. */
  errors: number;
  /** Shadow comparisons that produced a verdict (match or mismatch). */
  compared: number;
  mismatches: number;
  /** NATS answer durations: counts per bucket of `LATENCY_BOUNDS_MS`, then one for above. */
  latency: number[];
}

export type PlanDecision =
  | { readonly kind: "step"; readonly to: number; readonly reason: string }
  | { readonly kind: "rollback"; readonly to: number; readonly reason: string }
  | { readonly kind: "hold"; readonly reason: string };

export function emptyFigures(buckets: number): WindowFigures {
  return {
    requests: 0,
    errors: 0,
    compared: 0,
    mismatches: 0,
    latency: new Array(buckets + 1).fill(0),
  };
}

/** Adds `more` into `into` (bucket arrays of different lengths add up to the shorter). */
export function addFigures(into: WindowFigures, more: WindowFigures): void {
  into.requests += more.requests;
  into.errors += more.errors;
  into.compared += more.compared;
  into.mismatches += more.mismatches;
  const n = Math.min(into.latency.length, more.latency.length);
  for (let i = 0; i < n; i++) into.latency[i]! += more.latency[i]!;
}

/**
 * The p-quantile (0-1) of a bucketed distribution in ms, interpolated inside
 * its bucket as Prometheus' histogram_quantile does. One in the last (open)
 * bucket is only known to be above the top bound: +Infinity, so it fails any
 * finite latency gate. Undefined with no observations.
 */
export function quantileMs(
  bounds: readonly number[],
  counts: readonly number[],
  q: number,
): number | undefined {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return undefined;
  const rank = q * total;
  let cumulative = 0;
  for (let i = 0; i < counts.length; i++) {
    const count = counts[i]!;
    if (count > 0 && cumulative + count >= rank) {
      const lower = i === 0 ? 0 : bounds[i - 1]!;
      const upper = bounds[i];
      if (upper === undefined) return Number.POSITIVE_INFINITY;
      return lower + (upper - lower) * ((rank - cumulative) / count);
    }
    cumulative += count;
  }
  return bounds.at(-1);
}

export interface PlanInput {
  readonly plan: CutoverPlan;
  /** The route's live NATS share. */
  readonly current: number;
  /** The share before the plan's first step (routes.yaml), rolled back to from the first step. */
  readonly start: number;
  readonly figures: WindowFigures;
  /** Bucket upper bounds of `figures.latency`, in ms. */
  readonly boundsMs: readonly number[];
}

export function evaluatePlan(input: PlanInput): PlanDecision {
  const { plan, current, figures } = input;
  const { gates, steps } = plan;
  const next = steps.find((s) => s > current);
  // From 0 there is no NATS traffic to judge: the first step needs no evidence.
  if (current === 0 && next !== undefined) {
    return { kind: "step", to: next, reason: `plan: start at ${next}% (step 1/${steps.length})` };
  }
  if (figures.requests < gates.minRequests) {
    return {
      kind: "hold",
      reason: `too little traffic to judge: ${figures.requests} of ${gates.minRequests} requests`,
    };
  }
  const failed = failedGate(input);
  if (failed !== undefined) {
    const to = lastGoodStep(steps, current, input.start);
    return {
      kind: "rollback",
      to,
      reason: `${PLAN_ROLLBACK_PREFIX}: ${current}% -> ${to}% (last good step): ${failed} over ${figures.requests} requests`,
    };
  }
  const summary = summarize(input);
  if (next === undefined)
    return { kind: "hold", reason: `plan complete at ${current}%: ${summary}` };
  const index = steps.indexOf(next) + 1;
  return {
    kind: "step",
    to: next,
    reason: `plan: step ${index}/${steps.length} ${current}% -> ${next}%, gates held: ${summary}`,
  };
}

/**
 * The highest share below `current` the plan served: a step, or the starting
 * share (routes.yaml's, which may lie between steps); 0 when none is below.
 */
export function lastGoodStep(steps: readonly number[], current: number, start: number): number {
  return Math.max(0, ...[...steps, start].filter((share) => share < current));
}

function failedGate(input: PlanInput): string | undefined {
  const { gates } = input.plan;
  const f = input.figures;
  const errorRate = f.errors / f.requests;
  if (errorRate > gates.maxErrorRate) {
    return `error rate ${pct(errorRate)} > ${pct(gates.maxErrorRate)}`;
  }
  const p99 = quantileMs(input.boundsMs, f.latency, 0.99);
  if (p99 !== undefined && p99 > gates.maxP99Ms) {
    return `p99 ${latency(p99, input.boundsMs)} > ${ms(gates.maxP99Ms)}`;
  }
  const mismatchRate = f.compared === 0 ? 0 : f.mismatches / f.compared;
  if (mismatchRate > gates.maxMismatchRate) {
    return `shadow mismatch rate ${pct(mismatchRate)} > ${pct(gates.maxMismatchRate)} (${f.mismatches} of ${f.compared})`;
  }
  return undefined;
}

function summarize(input: PlanInput): string {
  const f = input.figures;
  const p99 = quantileMs(input.boundsMs, f.latency, 0.99);
  const mismatch =
    f.compared === 0 ? "no shadow comparisons" : `mismatches ${pct(f.mismatches / f.compared)}`;
  return `${f.requests} requests, errors ${pct(f.errors / f.requests)}, p99 ${p99 === undefined ? "n/a" : latency(p99, input.boundsMs)}, ${mismatch}`;
}

function pct(rate: number): string {
  return `${(rate * 100).toFixed(2)}%`;
}

/** A quantile for a reason: one in the open top bucket reads "over <top bound>". */
function latency(value: number, bounds: readonly number[]): string {
  return value === Number.POSITIVE_INFINITY ? `over ${ms(bounds.at(-1) ?? 0)}` : ms(value);
}

function ms(value: number): string {
  return `${Math.round(value * 10) / 10}ms`;
}
