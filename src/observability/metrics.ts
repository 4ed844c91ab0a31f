/**
 * The gateway's Prometheus metrics (prefix `turnout_`), on a registry of their own
 * so that tests and several gateways in one process never collide. Per-route
 * label children are resolved once and cached: the request path only calls
 * `inc()`/`observe()` on a ready child, never hashes label sets.
 */
import { collectDefaultMetrics, Gauge, Registry } from "prom-client";
import { durationBuckets } from "./buckets.js";
import {
  type CounterCell,
  FastCounter,
  FastHistogram,
  type HistogramCell,
} from "./fast-metrics.js";

export type Backend = "nats" | "legacy" | "gateway";
export type PayloadFormat = "json" | "protobuf";
export type PayloadDirection = "request" | "response";

export { UNMATCHED_ROUTE } from "../config/route.js";

const BYTE_BUCKETS = [64, 128, 256, 512, 1024, 4096, 16384, 65536, 262144, 1048576];

/** The metrics of one route, with label children resolved ahead of time. */
export class RouteMetrics {
  readonly #requests: FastCounter;
  readonly #retries: FastCounter;
  readonly #route: string;
  readonly #codes = new Map<string, CounterCell>();
  readonly #durations: Record<Backend, HistogramCell>;
  readonly #payloads: Record<`${PayloadDirection}:${PayloadFormat}`, HistogramCell>;

  constructor(metrics: GatewayMetrics, route: string) {
    this.#requests = metrics.requests;
    this.#retries = metrics.retries;
    this.#route = route;
    const duration = (backend: Backend) => metrics.duration.cell(route, backend);
    this.#durations = {
      nats: duration("nats"),
      legacy: duration("legacy"),
      gateway: duration("gateway"),
    };
    const payload = (direction: PayloadDirection, format: PayloadFormat) =>
      metrics.payloadBytes.cell(route, direction, format);
    this.#payloads = {
      "request:json": payload("request", "json"),
      "request:protobuf": payload("request", "protobuf"),
      "response:json": payload("response", "json"),
      "response:protobuf": payload("response", "protobuf"),
    };
  }

  /** Counts one answered request and its duration in seconds. */
  observeRequest(backend: Backend, status: number, seconds: number): void {
    const key = `${backend}:${status}`;
    let child = this.#codes.get(key);
    if (child === undefined) {
      child = this.#requests.cell(this.#route, backend, String(status));
      this.#codes.set(key, child);
    }
    child.inc();
    this.#durations[backend].observe(seconds);
  }

  observePayload(direction: PayloadDirection, format: PayloadFormat, bytes: number): void {
    this.#payloads[`${direction}:${format}`].observe(bytes);
  }

  /** A counter of the retries towards `backend`, to pass to compileRetry. */
  retryCounter(backend: "nats" | "legacy"): () => void {
    const cell = this.#retries.cell(this.#route, backend);
    return () => cell.inc();
  }
}

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly requests: FastCounter;
  readonly duration: FastHistogram;
  readonly payloadBytes: FastHistogram;
  readonly fallbacks: FastCounter;
  readonly deadLetters: FastCounter;
  readonly deadLettersLost: FastCounter;
  readonly shadow: FastCounter;
  readonly shadowSkipped: FastCounter;
  readonly rateLimited: FastCounter;
  readonly retries: FastCounter;
  readonly cutoverPercent: Gauge<"route" | "kind">;
  readonly natsConnected: Gauge;
  readonly breakerState: Gauge<"route" | "backend">;
  readonly #routes = new Map<string, RouteMetrics>();

  /** `extraDurationBoundsS`: more bounds of the duration histogram, in seconds (plan gates). */
  constructor(
    options: { processMetrics?: boolean; extraDurationBoundsS?: readonly number[] } = {},
  ) {
    this.requests = new FastCounter(
      "turnout_requests_total",
      "HTTP requests answered, by route, backend that answered and status code.",
      ["route", "backend", "code"],
      this.registry,
    );
    this.duration = new FastHistogram(
      "turnout_request_duration_seconds",
      "Time from request received to answer sent, by route and backend.",
      ["route", "backend"],
      durationBuckets(options.extraDurationBoundsS),
      this.registry,
    );
    this.payloadBytes = new FastHistogram(
      "turnout_payload_bytes",
      "Body sizes on the NATS path: JSON as the client sees it vs protobuf on NATS.",
      ["route", "direction", "format"],
      BYTE_BUCKETS,
      this.registry,
    );
    this.fallbacks = new FastCounter(
      "turnout_fallbacks_total",
      "Requests the NATS path could not serve that were handed to legacy instead (served or not), by reason.",
      ["route", "reason"],
      this.registry,
    );
    this.deadLetters = new FastCounter(
      "turnout_dead_letters_total",
      "Requests that finally failed on NATS and that legacy did not serve instead, stored in the TURNOUT_DLQ stream.",
      ["route"],
      this.registry,
    );
    this.deadLettersLost = new FastCounter(
      "turnout_dead_letters_lost_total",
      "Dead letters not stored, by reason: overloaded (too many awaiting their ack), unavailable (no stream, JetStream or NATS), failed (the publish failed).",
      ["route", "reason"],
      this.registry,
    );
    this.shadow = new FastCounter(
      "turnout_shadow_total",
      "Mirrored requests compared with the primary answer: match, mismatch or error.",
      ["route", "result"],
      this.registry,
    );
    this.shadowSkipped = new FastCounter(
      "turnout_shadow_skipped_total",
      "Requests chosen for mirroring that were not mirrored, by reason.",
      ["route", "reason"],
      this.registry,
    );
    this.rateLimited = new FastCounter(
      "turnout_rate_limited_total",
      "Requests refused with 429 because they exceeded the route's rateLimit.",
      ["route"],
      this.registry,
    );
    this.retries = new FastCounter(
      "turnout_retries_total",
      "Attempts made again after a failure that reached no one, or a timeout on an idempotent route.",
      ["route", "backend"],
      this.registry,
    );
    this.cutoverPercent = new Gauge({
      name: "turnout_cutover_percent",
      help: "Live cutover percentage of each route: kind nats (served by NATS) or shadow (mirrored).",
      labelNames: ["route", "kind"],
      registers: [this.registry],
      // --workers: every worker applies the same KV value; while a change
      // propagates, the largest share any worker still applies.
      aggregator: "max",
    });
    this.breakerState = new Gauge({
      name: "turnout_breaker_state",
      help: "Circuit breaker of each route and backend: 0 closed, 1 half-open, 2 open.",
      labelNames: ["route", "backend"],
      registers: [this.registry],
      // --workers: each worker has its own breakers; the worst one (open if any is).
      aggregator: "max",
    });
    this.natsConnected = new Gauge({
      name: "turnout_nats_connected",
      help: "1 while the gateway's NATS connection is up, 0 while it is connecting or reconnecting.",
      registers: [this.registry],
      // --workers: 0 as soon as one worker has lost NATS.
      aggregator: "min",
    });
    this.natsConnected.set(0);
    if (options.processMetrics !== false) {
      collectDefaultMetrics({ register: this.registry });
    }
  }

  /** The cached metrics of one route (created on first use). */
  route(name: string): RouteMetrics {
    let metrics = this.#routes.get(name);
    if (metrics === undefined) {
      metrics = new RouteMetrics(this, name);
      this.#routes.set(name, metrics);
    }
    return metrics;
  }
}
