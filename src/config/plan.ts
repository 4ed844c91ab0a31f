/** `cutover.plan`: steps, window length and gates of an automatic progressive cutover. */

import { DURATION_BUCKETS } from "../observability/buckets.js";
import type { Field } from "./field.js";
import { checkKeys, readDuration, readList, readNumber, readPercent, required } from "./read.js";
import { PLAN_GATE_KEYS, PLAN_KEYS } from "./schema.js";
import type { CutoverPlan, PlanGates } from "./types.js";

/**
 * The top bucket bound of turnout_request_duration_seconds, in ms: the plan's
 * p99 is only known to be above it, so a latency gate must sit below it to be
 * able to fail.
 */
export const P99_TOP_BOUND_MS = (DURATION_BUCKETS.at(-1) ?? 0) * 1000;

/**
 * A rate gate (0-1) fails when the window's rate is above it (plan-evaluate.ts):
 * 1 switches it off, the one way to, as every gate must be given.
 */
const RATE_GATE = { min: 0, max: 1 };

/** The plan, or undefined when absent or unusable (every problem reported). */
export function readPlan(f: Field): CutoverPlan | undefined {
  if (!checkKeys(f, PLAN_KEYS)) return undefined;
  const present = ["steps", "every", "gates"].map((key) => required(f.child(key)));
  const steps = readSteps(f.child("steps"));
  const everyMs = readDuration(f.child("every"), true);
  const gates = readGates(f.child("gates"));
  if (present.includes(false) || steps === undefined || everyMs === undefined) return undefined;
  if (gates === undefined) return undefined;
  return { steps, everyMs, gates };
}

function readSteps(f: Field): number[] | undefined {
  let ok = true;
  let previous = Number.NEGATIVE_INFINITY;
  const steps = readList(f, (item) => {
    const step = readPercent(item);
    if (step === undefined) {
      ok = false;
      return undefined;
    }
    if (step <= previous) {
      item.problem(`must be more than the step before it (${previous}): steps go up`);
      ok = false;
    }
    previous = step;
    return step;
  });
  if (steps === undefined) return undefined;
  if (steps.length === 0) {
    f.problem("must hold at least one percentage, e.g. [1, 5, 25, 50, 100]");
    return undefined;
  }
  return ok ? steps : undefined;
}

function readGates(f: Field): PlanGates | undefined {
  if (!checkKeys(f, PLAN_GATE_KEYS)) return undefined;
  const present = PLAN_GATE_KEYS.map((key) => required(f.child(key)));
  const gates = {
    maxErrorRate: readNumber(f.child("maxErrorRate"), RATE_GATE),
    maxP99Ms: readMaxP99(f.child("maxP99")),
    maxMismatchRate: readNumber(f.child("maxMismatchRate"), RATE_GATE),
    minRequests: readNumber(f.child("minRequests"), { min: 1, integer: true }),
  };
  if (present.includes(false)) return undefined;
  const { maxErrorRate, maxP99Ms, maxMismatchRate, minRequests } = gates;
  if (maxErrorRate === undefined || maxP99Ms === undefined) return undefined;
  if (maxMismatchRate === undefined || minRequests === undefined) return undefined;
  return { maxErrorRate, maxP99Ms, maxMismatchRate, minRequests };
}

/** `gates.maxP99`: a positive duration below the latency histogram's top bound. */
function readMaxP99(f: Field): number | undefined {
  const ms = readDuration(f, true);
  if (ms === undefined || ms < P99_TOP_BOUND_MS) return ms;
  f.problem(
    `must be below ${P99_TOP_BOUND_MS / 1000}s, the latency histogram's top bound: a p99 above it is not measured, so the gate could never fail; got ${f.describe()}`,
  );
  return undefined;
}
