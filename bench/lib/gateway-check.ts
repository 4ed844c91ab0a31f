/**
 * After a gateway scenario's runs: did the gateway do what the scenario is
 * meant to measure? Read from its /metrics (totals since it started, probe and
 * warm-up included): every request served by the expected side, with a 2xx;
 * (requests whose client left, 499, are only reported: wrk closes its
 * connections with requests in flight at the end of every run);
 * for a shadow scenario, mirrors made and the two answers equal (a mismatch
 * costs a log entry and would skew the CPU figure). The share of requests
 * actually mirrored is reported, not required: mirrors outlive their request,
 * so under a closed-loop load they pile up to the gateway's in-flight cap and
 * the rest are skipped, as designed.
 */
import { type Sample, sumBy, sumSamples } from "./prom.js";

export interface GatewayExpectation {
  /** The route's name in the routes file. */
  readonly route: string;
  /** The side that must serve every request. */
  readonly side: "nats" | "legacy";
  /** Every request also mirrored to the other side (shadow: 100), or none. */
  readonly mirrored: boolean;
}

export interface CheckResult {
  /** One line for the report. */
  readonly summary: string;
  /** What is wrong, when the scenario did not measure what it is meant to. */
  readonly problem?: string;
  /** A short remark for the report's table (e.g. the share actually mirrored). */
  readonly note?: string;
}

/** The gateway's code for a client that closed its connection before the answer. */
const CLIENT_CLOSED_REQUEST = "499";

function list(groups: Record<string, number>): string {
  const entries = Object.entries(groups).filter(([, n]) => n > 0);
  return entries.length === 0 ? "none" : entries.map(([k, n]) => `${k} ${n}`).join(", ");
}

export function checkGateway(samples: readonly Sample[], expect: GatewayExpectation): CheckResult {
  const where = { route: expect.route };
  const byBackend = sumBy(samples, "turnout_requests_total", "backend", where);
  const byCode = sumBy(samples, "turnout_requests_total", "code", where);
  const served = Object.values(byBackend).reduce((a, b) => a + b, 0);
  const shadow = sumBy(samples, "turnout_shadow_total", "result", where);
  const skipped = sumBy(samples, "turnout_shadow_skipped_total", "reason", where);
  const compared = Object.values(shadow).reduce((a, b) => a + b, 0);
  const fallbacks = sumSamples(samples, "turnout_fallbacks_total", where);

  let summary = `gateway served ${served} (${list(byBackend)})`;
  if (expect.mirrored || compared > 0) {
    summary +=
      `; mirrors compared ${compared} (${list(shadow)})` +
      `, skipped ${Object.values(skipped).reduce((a, b) => a + b, 0)} (${list(skipped)})`;
  }
  if (fallbacks > 0) summary += `; fallbacks ${fallbacks}`;
  const left = byCode[CLIENT_CLOSED_REQUEST] ?? 0;
  if (left > 0) summary += `; ${left} left by wrk at the ends of runs (499)`;

  const problems: string[] = [];
  if (served === 0) problems.push(`no request counted for route ${expect.route}`);
  const otherSides = served - (byBackend[expect.side] ?? 0);
  if (otherSides > 0) problems.push(`${otherSides} requests not served by ${expect.side}`);
  const non2xx = Object.entries(byCode)
    .filter(([code]) => !code.startsWith("2") && code !== CLIENT_CLOSED_REQUEST)
    .reduce((a, [, n]) => a + n, 0);
  if (non2xx > 0) problems.push(`${non2xx} answers were not 2xx`);
  let note: string | undefined;
  if (expect.mirrored) {
    const bad = (shadow["mismatch"] ?? 0) + (shadow["error"] ?? 0);
    if (bad > 0) problems.push(`${bad} mirrors did not match`);
    if (compared === 0) problems.push("no request was mirrored");
    // Every request is chosen at shadow 100: each one is compared or skipped.
    const skippedTotal = Object.values(skipped).reduce((a, b) => a + b, 0);
    const chosen = compared + skippedTotal;
    if (chosen > 0) note = `mirrored ${((compared / chosen) * 100).toFixed(1)}% of requests`;
  } else if (compared > 0) {
    problems.push(`${compared} requests were mirrored`);
  }
  return {
    summary,
    ...(problems.length > 0 ? { problem: problems.join("; ") } : {}),
    ...(note !== undefined ? { note } : {}),
  };
}
