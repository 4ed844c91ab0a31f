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
import {
  type Answer,
  compareAnswers,
  compileIgnorePaths,
  compileNormalizer,
  type IgnorePaths,
  type Normalizer,
} from "./compare.js";
import type { MismatchLog } from "./mismatch-log.js";

export type { Answer as ComparedAnswer } from "./compare.js";

export interface MirrorLimits {
  /** Mirrors in flight at once, over all routes (default 256). */
  readonly maxInFlight: number;
  /** Largest request body mirrored, and largest answer body compared, in bytes (default 256 KiB). */
  readonly maxBodyBytes: number;
}

export const DEFAULT_MIRROR_LIMITS: MirrorLimits = { maxInFlight: 256, maxBodyBytes: 256 * 1024 };

export type SkipReason = "in_flight_cap" | "body_too_large" | "primary_failed" | "breaker_open";

/** The request facts a mismatch entry records. */
export interface MirroredRequest {
  readonly requestId: string;
  readonly method: string;
  readonly path: string;
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
 * any other. Failures to reach the side at all (5xx made by the gateway:
 * no responders, timeout, refused...) are counted as `error`, not compared.
 */
export function answerOfFailure(error: unknown): Answer | undefined {
  if (!(error instanceof TurnoutError)) return undefined;
  if (error.code !== "TURNOUT_ERR_WORKER" && error.status >= 500) return undefined;
  const body = JSON.stringify({ detail: error.message });
  return { status: error.status, body, contentType: "application/problem+json" };
}

/**
 * What a mirror call ends as: an answer to compare, a failure (undefined),
 * refused by its breaker, or an answer longer than the comparison cap.
 */
const REFUSED = Symbol("mirror breaker open");
const TOO_LARGE = Symbol("answer over the cap");
type MirrorOutcome = Answer | undefined | typeof REFUSED | typeof TOO_LARGE;

function outcomeOfFailure(error: unknown): MirrorOutcome {
  if (error instanceof TurnoutError && error.code === "TURNOUT_ERR_BREAKER_OPEN") return REFUSED;
  if (error instanceof TurnoutError && error.code === "TURNOUT_ERR_UPSTREAM_TOO_LARGE") {
    return TOO_LARGE;
  }
  return answerOfFailure(error);
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
      if (route.legacy !== undefined) this.#routes.set(route.name, new RouteMirror(root, route));
    }
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get maxBodyBytes(): number {
    return this.#limits.maxBodyBytes;
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
    const mirrored: Promise<MirrorOutcome> = breaker
      .run(call, isServerError)
      .then((answer) => answer, outcomeOfFailure);
    let settled = false;
    const finish = (primary: Answer | undefined | typeof TOO_LARGE) => {
      if (settled) return;
      settled = true;
      void mirrored.then((answer) => {
        this.#inFlight--;
        if (primary === undefined) return void this.#skip(route, "primary_failed");
        if (primary === TOO_LARGE || answer === TOO_LARGE) {
          return void this.#skip(route, "body_too_large");
        }
        // Half-open: another mirror is the probe.
        if (answer === REFUSED) return void this.#skip(route, "breaker_open");
        if (answer === undefined) return this.#count(route, "error");
        this.#compare(route, mirror, primarySide, request, primary, answer);
      });
    };
    return {
      comparePrimary: (primary) => finish(primary),
      primaryFailed: () => finish(undefined),
      primaryTooLarge: () => finish(TOO_LARGE),
    };
  }

  #compare(
    route: string,
    mirror: RouteMirror,
    primarySide: Side,
    request: MirroredRequest,
    primary: Answer,
    answer: Answer,
  ): void {
    let result: ReturnType<typeof compareAnswers>;
    try {
      result = compareAnswers(primary, answer, mirror.normalizer, mirror.ignore);
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

  #count(route: string, result: "match" | "mismatch" | "error"): void {
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
