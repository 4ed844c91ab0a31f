/**
 * What a cutover change may be, shared by the admin API and the CLI: both
 * percentages 0-100 with at most two decimals, a reason, and values the route
 * can honour (the same rules routes.yaml is checked against at load).
 */
import { isHundredths } from "../config/read.js";
import type { RouteConfig } from "../config/types.js";
import { TurnoutError } from "../errors.js";
import type { CutoverValues } from "./cutover-state.js";

/** A requested change: the values, who asks and why. */
export interface CutoverChange extends CutoverValues {
  readonly by: string;
  readonly reason: string;
}

/** The longest reason kept in the history. */
export const MAX_REASON_LENGTH = 500;
/** Who made a change: a name, an address, a tool; not a document in every history row. */
export const MAX_BY_LENGTH = 200;

/**
 * `by` of the value written from routes.yaml when a route has no key yet. No
 * change may claim it: it would pass for the seed in the history, and a plan
 * treats such a value as its own (plan-status.ts) instead of pausing.
 */
export const SEED_BY = "routes.yaml";
/** `by` of routes.yaml's values seeded into a bucket lost under running replicas: plans pause. */
export const RESEED_BY = "turnout";

/**
 * Control characters: C0 (newline, tab, ESC...), DEL and C1. A terminal acts
 * on them, so a reason or a name holding one could forge history rows or
 * send escape sequences to whoever reads the history.
 */
const CONTROL_CHARACTER = /\p{Cc}/u;

/** Undefined when `value` is a percentage 0-100 with at most two decimals, else what is wrong. */
export function percentProblem(value: unknown): string | undefined {
  if (typeof value !== "number" || !Number.isFinite(value)) return "must be a number from 0 to 100";
  if (value < 0 || value > 100) return `must be from 0 to 100, got ${value}`;
  return isHundredths(value) ? undefined : `has at most two decimals, got ${value}`;
}

/**
 * Checks a change body (`{nats, shadow?, reason, by?}`, already parsed JSON)
 * for `route`; `current` supplies the shadow when the body leaves it out.
 * Throws TURNOUT_ERR_BAD_FIELD naming the field.
 */
export function parseCutoverChange(
  body: unknown,
  route: RouteConfig,
  current: CutoverValues,
  defaultBy: string,
): CutoverChange {
  const input = fieldsOf(body, ["nats", "shadow", "reason", "by"], "{nats, shadow?, reason}");
  if (input.nats === undefined) throw bad("nats", "is required");
  const natsProblem = percentProblem(input.nats);
  if (natsProblem !== undefined) throw bad("nats", natsProblem);
  // Left out keeps the current share; null is not "off" (that is 0): refused below.
  const shadow = input.shadow === undefined ? current.shadow : input.shadow;
  const shadowProblem = percentProblem(shadow);
  if (shadowProblem !== undefined) throw bad("shadow", shadowProblem);
  const reason = reasonOf(input);
  if (reason === undefined) throw bad("reason", "is required: say why the split changes");
  const values = { nats: input.nats as number, shadow: shadow as number };
  checkRouteAllows(route, values);
  return { ...values, by: byOf(input, defaultBy), reason };
}

/** Who asks for a rollback, and optionally why (kept in the history beside "rollback of <at>"). */
export interface RollbackRequest {
  readonly by: string;
  readonly reason: string | undefined;
}

/** Checks a rollback body (`{reason?, by?}`, already parsed JSON); throws TURNOUT_ERR_BAD_FIELD. */
export function parseRollbackRequest(body: unknown, defaultBy: string): RollbackRequest {
  const input = fieldsOf(body, ["reason", "by"], "{reason?, by?}");
  return { by: byOf(input, defaultBy), reason: reasonOf(input) };
}

function fieldsOf(
  body: unknown,
  allowed: readonly string[],
  shape: string,
): Record<string, unknown> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw bad("body", `must be a JSON object ${shape}`);
  }
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) throw bad(key, `is not a field here (${allowed.join(", ")})`);
  }
  return body as Record<string, unknown>;
}

/** The trimmed reason, or undefined when none is given. */
function reasonOf(input: Record<string, unknown>): string | undefined {
  if (input.reason === undefined) return undefined;
  if (typeof input.reason !== "string") throw bad("reason", "must be a string");
  const reason = input.reason.trim();
  if (reason.length > MAX_REASON_LENGTH) {
    throw bad("reason", `is longer than ${MAX_REASON_LENGTH} characters`);
  }
  refuseControlCharacters("reason", reason);
  return reason === "" ? undefined : reason;
}

function byOf(input: Record<string, unknown>, defaultBy: string): string {
  if (input.by === undefined) return defaultBy;
  if (typeof input.by !== "string" || input.by.trim() === "") {
    throw bad("by", "must be a non-empty string");
  }
  const by = input.by.trim();
  if (by.length > MAX_BY_LENGTH) throw bad("by", `is longer than ${MAX_BY_LENGTH} characters`);
  refuseControlCharacters("by", by);
  // Case aside too: "Routes.yaml" would still pass for the seed in the history.
  if (by.toLowerCase() === SEED_BY) {
    throw bad("by", `"${by}" is reserved for the starting values written from routes.yaml`);
  }
  return by;
}

function refuseControlCharacters(field: string, text: string): void {
  const found = CONTROL_CHARACTER.exec(text);
  if (found === null) return;
  const code = found[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, "0");
  throw bad(
    field,
    `must not hold control characters (newlines, tabs, escapes): U+${code} at character ${found.index + 1}`,
  );
}

/** The route-level rules: no split or shadow without legacy, no shadowed writes unless allowed. */
export function checkRouteAllows(route: RouteConfig, values: CutoverValues): void {
  if (route.legacy === undefined && values.nats < 100) {
    throw bad("nats", `is ${values.nats} but route ${route.name} has no legacy upstream`);
  }
  if (route.legacy === undefined && values.shadow > 0) {
    throw bad("shadow", `route ${route.name} has no legacy upstream to mirror to`);
  }
  if (values.shadow > 0 && !route.idempotent && !route.shadowWrites) {
    throw bad(
      "shadow",
      `route ${route.name} is not idempotent: mirroring runs each write twice; set shadowWrites: true if that is safe`,
    );
  }
}

function bad(field: string, message: string): TurnoutError {
  return new TurnoutError("TURNOUT_ERR_BAD_FIELD", `${field} ${message}`, { field });
}
