/**
 * Mirroring, off the request path: a request chosen for shadowing also goes to
 * the side that is not serving; once both answers are in, they are compared and
 * the result counted (and, on a mismatch, kept for the admin API). Nothing here
 * is awaited by the client's request, and a mirror's failure is only counted.
 * Mirrors are capped in flight and in body size, and each route's mirrors to
 * each side go through a breaker of their own; a skipped mirror is counted
 * with its reason.
 */
import type protobuf from "protobufjs";
import { type Breaker, createBreaker, isServerError } from "../backends/resilience/breaker.js";
import type { RouteConfig } from "../config/types.js";
import { TurnoutError } from "../errors.js";
import type { GatewayMetrics } from "../observability/metrics.js";
import type { Side } from "../routing/split.js";
import { PROBLEM_CONTENT_TYPE, toProblem } from "../server/problem.js";
import {
  type Answer,
  compareAnswers,
  compileIgnorePaths,
  compileNormalizer,
  type IgnorePaths,
  type Normalizer,
} from "./compare.js";
import { decodedForComparison } from "./content-coding.js";
import type { MismatchLog } from "./mismatch-log.js";

export type { Answer as ComparedAnswer } from "./compare.js";

export interface MirrorLimits {
  /** Mirrors in flight at once, over all routes (default 256). */
  readonly maxInFlight: number;
  /** Largest request body mirrored, and largest answer body compared, in bytes (default 256 KiB). */
  readonly maxBodyBytes: number;
}

export const DEFAULT_MIRROR_LIMITS: MirrorLimits = { maxInFlight: 256, maxBodyBytes: 256 * 1024 };

export type SkipReason =
  | "in_flight_cap"
  | "body_too_large"
  | "primary_failed"
  | "breaker_open"
  | "undecodable";

/** The request facts a mismatch entry records. */
export interface MirroredRequest {
  readonly requestId: string;
  readonly method: string;
  /** Without the query string, which may carry secrets (the request log drops it too). */
  readonly path: string;
  /** The request body's length in bytes (UTF-8), held against the cap. */
  readonly bodyBytes: number;
}

/** A mirror under way: hand it the primary's answer (or its failure) when known. */
export interface MirrorHandle {
  comparePrimary(primary: Answer): void;
  primaryFailed(): void;
  /** The primary's answer is longer than the comparison cap: skipped as `body_too_large`. */
  primaryTooLarge(): void;
}

/**
 * A failed mirror call as the client would have seen it: a worker's error
 * status or a 4xx the gateway would have answered are answers, compared like
 * any other, with the problem+json body the client gets for them
 * (server/problem.ts, as the gateway sends it). Failures to reach the side at
 * all (5xx made by the gateway: no responders, timeout, refused...) are
 * counted as `error`, not compared.
 */
export function answerOfFailure(
  error: unknown,
  requestId: string,
  route: string,
): Answer | undefined {
  if (!(error instanceof TurnoutError)) return undefined;
  if (error.code !== "TURNOUT_ERR_WORKER" && error.status >= 500) return undefined;
  const body = JSON.stringify(toProblem(error, requestId, route));
  return { status: error.status, body, contentType: PROBLEM_CONTENT_TYPE };
}

/**
 * What a mirror call ends as: an answer to compare, a failure (undefined),
 * refused by its breaker, or an answer longer than the comparison cap.
 */
const REFUSED = Symbol("mirror breaker open");
const TOO_LARGE = Symbol("answer over the cap");
type MirrorOutcome = Answer | undefined | typeof REFUSED | typeof TOO_LARGE;

function outcomeOfFailure(error: unknown, request: MirroredRequest, route: string): MirrorOutcome {
  if (error instanceof TurnoutError && error.code === "TURNOUT_ERR_BREAKER_OPEN") return REFUSED;
  if (error instanceof TurnoutError && error.code === "TURNOUT_ERR_UPSTREAM_TOO_LARGE") {
    return TOO_LARGE;
  }
  return answerOfFailure(error, request.requestId, route);
}

/** Whether `body` is at most `maxBytes` long, measuring a string only when its length does not tell. */
function fitsIn(body: Answer["body"], maxBytes: number): boolean {
  if (body === undefined) return true;
  if (typeof body !== "string") return body.byteLength <= maxBytes;
  // UTF-8 takes 1 to 3 bytes per UTF-16 unit.
  if (body.length > maxBytes) return false;
  return body.length * 3 <= maxBytes || Buffer.byteLength(body) <= maxBytes;
}

class RouteMirror {
  readonly normalizer: Normalizer;
  readonly ignore: IgnorePaths;
  /**
   * Mirrors do not go through the primary's breakers, so that they never move
   * them; without breakers of their own, a route serving from NATS and
   * shadowing to a legacy upstream that is down would still try a connect
   * (about 160 µs of CPU) for every mirrored request. Same settings and
   * failure rules as the route's breaker.
   */
  readonly breakers: Readonly<Record<Side, Breaker>>;
  constructor(root: protobuf.Root, route: RouteConfig) {
    this.normalizer = compileNormalizer(root, route);
    this.ignore = compileIgnorePaths(route.compare.ignore);
    this.breakers = {
      nats: createBreaker(`${route.name}/nats mirror`, route.breaker),
      legacy: createBreaker(`${route.name}/legacy mirror`, route.breaker),
    };
  }
}

const SHADOW_RESULTS = ["match", "mismatch", "error"] as const;
type ShadowResult = (typeof SHADOW_RESULTS)[number];

export class Mirrors {
  readonly #routes = new Map<string, RouteMirror>();
  readonly #limits: MirrorLimits;
  readonly #metrics: GatewayMetrics;
  readonly #log: MismatchLog;
  #inFlight = 0;

  constructor(
    root: protobuf.Root,
    routes: readonly RouteConfig[],
    deps: { metrics: GatewayMetrics; log: MismatchLog; limits?: Partial<MirrorLimits> },
  ) {
    this.#limits = { ...DEFAULT_MIRROR_LIMITS, ...deps.limits };
    this.#metrics = deps.metrics;
    this.#log = deps.log;
    for (const route of routes) {
      if (route.legacy === undefined) continue;
      this.#routes.set(route.name, new RouteMirror(root, route));
      // At 0 from the start: a match rate with no match series would be no line, not 0%.
      for (const result of SHADOW_RESULTS) this.#metrics.shadow.cell(route.name, result);
    }
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get maxBodyBytes(): number {
    return this.#limits.maxBodyBytes;
  }

  /** Whether an answer is within the comparison cap (bodies over it are never compared). */
  fits(answer: Answer): boolean {
    return fitsIn(answer.body, this.#limits.maxBodyBytes);
  }

  /**
   * Starts `call` (the mirror side) unless a cap or the mirror side's breaker
   * says no; the comparison runs once both answers are known. Returns
   * undefined when skipped.
   */
  start(
    route: string,
    primarySide: Side,
    request: MirroredRequest,
    call: () => Promise<Answer>,
  ): MirrorHandle | undefined {
    const mirror = this.#routes.get(route);
    if (mirror === undefined) return undefined;
    if (request.bodyBytes > this.#limits.maxBodyBytes) return this.#skip(route, "body_too_large");
    if (this.#inFlight >= this.#limits.maxInFlight) return this.#skip(route, "in_flight_cap");
    const breaker = mirror.breakers[primarySide === "nats" ? "legacy" : "nats"];
    if (breaker.state === "open") return this.#skip(route, "breaker_open");

    this.#inFlight++;
    // An answer over the cap is let go of at once, not held until the other side is in.
    const mirrored: Promise<MirrorOutcome> = breaker.run(call, isServerError).then(
      (answer) => this.#held(answer),
      (error) => outcomeOfFailure(error, request, route),
    );
    let settled = false;
    const finish = (primary: Answer | undefined | typeof TOO_LARGE) => {
      if (settled) return;
      settled = true;
      void mirrored.then((answer) => {
        this.#inFlight--;
        this.#settle(route, mirror, primarySide, request, primary, answer);
      });
    };
    return {
      comparePrimary: (primary) => finish(this.#held(primary)),
      primaryFailed: () => finish(undefined),
      primaryTooLarge: () => finish(TOO_LARGE),
    };
  }

  #held(answer: Answer): Answer | typeof TOO_LARGE {
    return this.fits(answer) ? answer : TOO_LARGE;
  }

  /** Both outcomes are in: counted as skipped or an error, or compared. */
  #settle(
    route: string,
    mirror: RouteMirror,
    primarySide: Side,
    request: MirroredRequest,
    primary: Answer | undefined | typeof TOO_LARGE,
    answer: MirrorOutcome,
  ): void {
    if (primary === undefined) this.#skip(route, "primary_failed");
    else if (primary === TOO_LARGE || answer === TOO_LARGE) this.#skip(route, "body_too_large");
    // Half-open: another mirror is the probe.
    else if (answer === REFUSED) this.#skip(route, "breaker_open");
    else if (answer === undefined) this.#count(route, "error");
    else this.#compare(route, mirror, primarySide, request, primary, answer);
  }

  #compare(
    route: string,
    mirror: RouteMirror,
    primarySide: Side,
    request: MirroredRequest,
    primary: Answer,
    answer: Answer,
  ): void {
    // Decoded only now that both are in, off the request path.
    const decodedPrimary = decodedForComparison(primary, this.#limits.maxBodyBytes);
    if (typeof decodedPrimary === "string") return void this.#skip(route, decodedPrimary);
    const decodedMirror = decodedForComparison(answer, this.#limits.maxBodyBytes);
    if (typeof decodedMirror === "string") return void this.#skip(route, decodedMirror);
    let result: ReturnType<typeof compareAnswers>;
    try {
      result = compareAnswers(decodedPrimary, decodedMirror, mirror.normalizer, mirror.ignore);
    } catch {
      // A pathological body (e.g. nested past the stack) must not take the gateway down.
      this.#count(route, "error");
      return;
    }
    this.#count(route, result.result);
    if (result.result === "mismatch") {
      const { requestId, method, path } = request;
      this.#log.record(route, {
        requestId,
        method,
        path,
        primary: primarySide,
        diffs: result.diffs,
      });
    }
  }

  #count(route: string, result: ShadowResult): void {
    this.#metrics.shadow.cell(route, result).inc();
  }

  /** Counts a mirror not made, e.g. as the primary failed before one was started. */
  skipped(route: string, reason: SkipReason): void {
    this.#skip(route, reason);
  }

  #skip(route: string, reason: SkipReason): undefined {
    this.#metrics.shadowSkipped.cell(route, reason).inc();
    return undefined;
  }
}
