/**
 * Where a route's cutover plan stands, read from the route's latest live value
 * alone: every replica, the admin API and the CLI tell the same, while only
 * the lease holder runs the plan (plan-driver.ts).
 */
import type { RouteConfig } from "../config/types.js";
import type { CutoverRecord } from "./cutover-store.js";
import { SEED_BY } from "./cutover-store.js";

/** `by` of every value the plan writes. */
export const PLAN_BY = "plan";
/** Reasons of the plan's rollbacks start so; such a value stops the plan. */
export const PLAN_ROLLBACK_PREFIX = "plan rollback";

/**
 * `running`: it will take `next` when a window's gates pass; `paused`: someone
 * else set the latest value, or there is none (a value written `by: plan`
 * resumes it); `stopped`:
 * it rolled back; `done`: at its last step; `blocked`: it would be running, but
 * the lease holder could not write its last step (`detail` says why).
 */
export type PlanState = "running" | "paused" | "stopped" | "done" | "blocked";

export interface PlanStatus {
  readonly state: PlanState;
  readonly steps: readonly number[];
  readonly everyMs: number;
  /** The share it moves to next (running only). */
  readonly next?: number;
  /** One line for people: who paused it and why, the rollback's reason... */
  readonly detail: string;
}

const NO_LIVE_VALUE =
  "no live value (key deleted or purged, or live state off): routes.yaml's values apply; a value set --by plan resumes it";

/**
 * The plan's status, or undefined for a route without one. `blocked`: why the
 * lease holder could not write the plan's last step, if it could not.
 */
export function planStatus(
  route: Pick<RouteConfig, "cutover">,
  latest: Pick<CutoverRecord, "nats" | "by" | "reason"> | undefined,
  blocked?: string,
): PlanStatus | undefined {
  const plan = route.cutover.plan;
  if (plan === undefined) return undefined;
  const base = { steps: plan.steps, everyMs: plan.everyMs };
  // The plan writes each step over the key's latest value: with none it cannot move.
  if (latest === undefined) return { ...base, state: "paused", detail: NO_LIVE_VALUE };
  // In any case, as `routes.yaml` is refused as a `by` in any case.
  if (latest.by.toLowerCase() !== PLAN_BY && latest.by !== SEED_BY) {
    return { ...base, state: "paused", detail: `set by ${latest.by}: ${latest.reason}` };
  }
  if (latest.reason.startsWith(PLAN_ROLLBACK_PREFIX)) {
    return { ...base, state: "stopped", detail: latest.reason };
  }
  const current = latest.nats;
  const next = plan.steps.find((step) => step > current);
  if (next === undefined)
    return { ...base, state: "done", detail: `at its last step, ${current}%` };
  if (blocked !== undefined) return { ...base, state: "blocked", next, detail: blocked };
  return { ...base, state: "running", next, detail: `next step ${next}%` };
}
