/**
 * The gateway's lifecycle: check the NATS secrets and files, build both
 * listeners, listen, connect to NATS in the background, and drain on close. The
 * CLI and the tests start a gateway the same way, through `startGateway`.
 */
import { Server as TlsServer } from "node:tls";
import type { FastifyInstance } from "fastify";
import type protobuf from "protobufjs";
import { LegacyUpstreams } from "../backends/legacy/upstreams.js";
import { connectNats, natsSettingProblems } from "../backends/nats/connection.js";
import { DeadLetterStore } from "../backends/nats/dead-letters.js";
import { NatsLink } from "../backends/nats/link.js";
import { NatsStatus } from "../backends/nats/status.js";
import { overallDeadlineMs } from "../backends/resilience/retry-policy.js";
import { MAX_TIMER_MS } from "../config/timer-limit.js";
import type { GatewayConfig, RouteConfig } from "../config/types.js";
import { AdminToken } from "../control/admin-token.js";
import { CutoverState } from "../control/cutover-state.js";
import { CutoverStore } from "../control/cutover-store.js";
import { PlanDriver, type PlanDriverOptions } from "../control/plan-driver.js";
import { ConfigError, TurnoutError } from "../errors.js";
import { CLUSTER_SCRAPE_TIMEOUT_MS } from "../observability/cluster-metrics.js";
import { GatewayMetrics } from "../observability/metrics.js";
import {
  type OtelOptions,
  otelOptionsFromEnv,
  type RequestSpans,
  startRequestSpans,
} from "../observability/otel.js";
import { buildOpenApiDocument } from "../openapi/index.js";
import { type MirrorLimits, Mirrors } from "../shadow/mirror.js";
import { MismatchLog } from "../shadow/mismatch-log.js";
import { buildAdmin, type ReadinessCheck } from "./admin.js";
import { buildGateway, type TrustProxy } from "./gateway.js";
import {
  Connections,
  drainListener,
  type ListenerOptions,
  requestTimeoutOf,
} from "./listener-options.js";

export interface StartOptions {
  readonly config: GatewayConfig;
  readonly root: protobuf.Root;
  readonly host: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
  readonly adminPort: number;
  /** HTTPS on both listeners, and the slow-client request timeout. */
  readonly listener?: ListenerOptions;
  readonly logger?: boolean | { level: string };
  /** TURNOUT_ADMIN_TOKEN: guards /admin and the forced-backend header; unset locks /admin. */
  readonly adminToken?: string;
  readonly mirrorLimits?: Partial<MirrorLimits>;
  /** Base wait between NATS connect attempts, in ms (tests shorten it). */
  readonly reconnectTimeWaitMs?: number;
  /** Lease and publishing periods of the cutover plans (tests shorten them). */
  readonly plan?: PlanDriverOptions;
  /** OpenTelemetry span export; unset: from the OTEL_* env (off unless asked); false: off. */
  readonly otel?: OtelOptions | false;
  /** Proxies whose X-Forwarded-* headers the public listener believes (`--trust-proxy`). */
  readonly trustProxy?: TrustProxy;
  /**
   * Listen only once NATS is connected and the live cutover state loaded (or
   * the server has no JetStream), at most `maxWaitMs` later or when `abort`
   * fires: for a --workers replacement, whose siblings serve both shared ports
   * meanwhile (its share of them would answer 503, or serve on routes.yaml's
   * split while the KV says otherwise; its /readyz cannot keep clients away on
   * a shared port). Unset: both listen at once and /readyz says when both are up.
   */
  readonly listenAfterNats?: { readonly maxWaitMs: number; readonly abort?: AbortSignal };
}

export interface RunningGateway {
  readonly url: string;
  readonly adminUrl: string;
  readonly metrics: GatewayMetrics;
  readonly cutover: CutoverState;
  /** The live cutover state in NATS KV, applied to `cutover`. */
  readonly cutoverStore: CutoverStore;
  /** Runs the routes' `cutover.plan`s while this replica holds the plan lease. */
  readonly plan: PlanDriver;
  readonly mismatches: MismatchLog;
  readonly mirrors: Mirrors;
  readonly nats: NatsLink;
  readonly natsStatus: NatsStatus;
  /** Dead letters (TURNOUT_DLQ): NATS failures that legacy did not serve instead. */
  readonly deadLetters: DeadLetterStore;
  /** Resolves once NATS is connected for the first time. */
  readonly connected: Promise<void>;
  /**
   * Graceful drain: stop accepting, close connections that carry no request,
   * let in-flight requests finish (their replies still arrive) within
   * `drainGraceMs`, then drain NATS and close the admin listener. Called again,
   * it answers the same drain.
   */
  close(): Promise<void>;
}

export async function startGateway(options: StartOptions): Promise<RunningGateway> {
  checkNatsSettings(options.config);
  const otel = options.otel === undefined ? otelOptionsFromEnv(process.env) : options.otel;
  // The SDK is only loaded when on.
  const spans: RequestSpans | undefined = otel ? await startRequestSpans(otel) : undefined;
  const parts = buildParts(options);
  let draining = false;
  const isDraining = () => draining;
  const admin = buildAdminListener(options, parts, isDraining);
  parts.log.attach(admin.log);
  const gateway = buildGateway({
    config: options.config,
    root: options.root,
    requester: parts.nats,
    legacy: parts.legacy,
    cutover: parts.cutover,
    cutoverLoaded: () => parts.cutoverStore.mode !== "starting",
    mirrors: parts.mirrors,
    adminToken: parts.adminToken,
    metrics: parts.metrics,
    deadLetters: parts.deadLetters,
    isDraining,
    listener: options.listener,
    logger: options.logger,
    trustProxy: options.trustProxy,
    spans,
  });
  if (spans !== undefined) parts.log.info("OpenTelemetry: exporting request spans over OTLP/HTTP");
  // Tracked from the first connection on, so that a drain knows each one.
  const listeners = {
    gateway: { app: gateway, connections: new Connections(gateway.server) },
    admin: { app: admin, connections: new Connections(admin.server) },
  };
  const stopConnecting = new AbortController();
  const connected = connectInBackground(options, parts, stopConnecting.signal);

  let adminUrl: string;
  let url: string;
  try {
    if (options.listenAfterNats) await untilServable(connected, options.listenAfterNats, parts);
    adminUrl = await listen(admin, options.host, options.adminPort);
    url = await listen(gateway, options.host, options.port);
  } catch (error) {
    // Nothing may keep running (and look healthy) when a port could not be had.
    stopConnecting.abort();
    await Promise.allSettled([
      gateway.close(),
      admin.close(),
      parts.plan.stop(),
      parts.cutoverStore.stop(),
      parts.nats.drain(),
      parts.legacy.close(),
      spans?.shutdown(),
    ]);
    throw cannotListen(error);
  }

  const { metrics, cutover, cutoverStore, plan, mismatches, mirrors, nats, natsStatus } = parts;
  let closing: Promise<void> | undefined;
  return {
    url,
    adminUrl,
    metrics,
    cutover,
    cutoverStore,
    plan,
    mismatches,
    mirrors,
    nats,
    natsStatus,
    deadLetters: parts.deadLetters,
    connected,
    close() {
      draining = true;
      closing ??= drainAll(options, listeners, parts, () => {
        stopConnecting.abort();
        return spans?.shutdown();
      });
      return closing;
    },
  };
}

interface Listener {
  readonly app: FastifyInstance;
  readonly connections: Connections;
}

/**
 * The drain, in order: the public listener (requests in flight finish within
 * the grace), then everything that serves them, then the admin listener, which
 * answers /readyz with 503 until the end.
 */
async function drainAll(
  options: StartOptions,
  listeners: { readonly gateway: Listener; readonly admin: Listener },
  parts: Parts,
  stopStarted: () => Promise<void> | undefined,
): Promise<void> {
  const { gateway, admin } = listeners;
  const cut = await drainListener(gateway.app, gateway.connections, drainGraceMs(options));
  if (cut > 0) parts.log.warn(`drain: ${cut} connection(s) cut with requests unfinished`);
  // Spans of the drained requests are exported before the exporter stops.
  const spansExported = stopStarted()?.catch((error: unknown) =>
    parts.log.warn(`OpenTelemetry: spans not exported on close: ${String(error)}`),
  );
  await parts.plan.stop();
  await parts.cutoverStore.stop();
  await Promise.all([parts.nats.drain(), parts.legacy.close(), spansExported]);
  await drainListener(admin.app, admin.connections, adminGraceMs(options));
}

/**
 * How long a drain waits for the requests in flight: one may still be
 * arriving (the slow-client cut-off), then run out its route's overall deadline
 * on NATS and, after a fallback, again on legacy. Past it (a legacy body that
 * streams on, an upload that never ends) the remaining connections are cut.
 * At most the longest timer Node keeps: each deadline fits it, but twice one
 * may not, and a longer timer would fire at once and cut every request.
 */
export function drainGraceMs(options: Pick<StartOptions, "config" | "listener">): number {
  const deadlines = options.config.routes.map((route) =>
    overallDeadlineMs({ ...route.retry, timeoutMs: route.timeoutMs, idempotent: route.idempotent }),
  );
  const graceMs = requestTimeoutOf(options.listener ?? {}) + 2 * Math.max(0, ...deadlines);
  return Math.min(graceMs, MAX_TIMER_MS);
}

/** The admin listener's calls are short; the slowest, a `--workers` scrape, gives up by itself. */
function adminGraceMs(options: Pick<StartOptions, "listener">): number {
  return requestTimeoutOf(options.listener ?? {}) + CLUSTER_SCRAPE_TIMEOUT_MS;
}

/**
 * Secrets and files named in `nats:` are read before anything starts: one that
 * cannot be read is a ConfigError listing each, never a gateway that listens
 * and stays "not connected yet" with the cause nowhere.
 */
function checkNatsSettings(config: GatewayConfig): void {
  const problems = natsSettingProblems(config.nats, config.file);
  if (problems.length > 0) throw new ConfigError(problems);
}

/** What both listeners share, made before either is built. */
interface Parts {
  readonly metrics: GatewayMetrics;
  readonly nats: NatsLink;
  readonly natsStatus: NatsStatus;
  readonly legacy: LegacyUpstreams;
  readonly cutover: CutoverState;
  readonly cutoverStore: CutoverStore;
  readonly plan: PlanDriver;
  readonly mismatches: MismatchLog;
  readonly mirrors: Mirrors;
  readonly deadLetters: DeadLetterStore;
  readonly adminToken: AdminToken;
  readonly log: DeferredLog;
}

/** Every plan's maxP99, in seconds: bounds of the duration histogram (see durationBuckets). */
function planGateBounds(routes: readonly RouteConfig[]): number[] {
  return routes.flatMap((route) => {
    const plan = route.cutover.plan;
    return plan === undefined ? [] : [plan.gates.maxP99Ms / 1000];
  });
}

function buildParts(options: StartOptions): Parts {
  const { config, root } = options;
  const metrics = new GatewayMetrics({ extraDurationBoundsS: planGateBounds(config.routes) });
  const nats = new NatsLink();
  const log = new DeferredLog();
  const cutover = new CutoverState(config.routes);
  cutover.subscribe((route, values) => {
    metrics.cutoverPercent.labels(route, "nats").set(values.nats);
    metrics.cutoverPercent.labels(route, "shadow").set(values.shadow);
  });
  const mismatches = new MismatchLog();
  const cutoverStore = new CutoverStore(cutover, config.routes, log);
  return {
    metrics,
    nats,
    natsStatus: new NatsStatus(
      undefined,
      (state) => metrics.natsConnected.set(state === "connected" ? 1 : 0),
      log,
    ),
    legacy: new LegacyUpstreams(config.routes),
    cutover,
    cutoverStore,
    plan: new PlanDriver(
      { metrics, store: cutoverStore, routes: config.routes, log },
      options.plan,
    ),
    mismatches,
    mirrors: new Mirrors(root, config.routes, {
      metrics,
      log: mismatches,
      limits: options.mirrorLimits,
    }),
    deadLetters: new DeadLetterStore({
      link: nats,
      routes: config.routes,
      root,
      metrics,
      log,
    }),
    adminToken: new AdminToken(options.adminToken),
    log,
  };
}

/** What a server without JetStream leaves undone, for /readyz (still 200: the other routes serve). */
function noJetStreamNotes(config: GatewayConfig): string[] {
  const publishing = config.routes.filter((route) => route.mode === "publish").map((r) => r.name);
  const notes = ["cutover: file values (no JetStream)"];
  if (publishing.length > 0) {
    notes.push(`publish routes answer 503 (no JetStream): ${publishing.join(", ")}`);
  }
  return notes;
}

function buildAdminListener(
  options: StartOptions,
  parts: Parts,
  isDraining: () => boolean,
): FastifyInstance {
  const { natsStatus, cutoverStore } = parts;
  const readiness: ReadinessCheck[] = [
    () => (isDraining() ? "shutting down" : undefined),
    () => (natsStatus.isConnected() ? parts.nats.problem : natsStatus.describe()),
    () => (cutoverStore.mode === "starting" ? "live cutover state not loaded yet" : undefined),
  ];
  return buildAdmin({
    metrics: parts.metrics,
    readiness,
    api: {
      token: parts.adminToken,
      routeNames: options.config.routes.map((r) => r.name),
      mismatches: parts.mismatches,
      cutover: { state: parts.cutover, store: cutoverStore, plans: parts.plan },
      deadLetters: parts.deadLetters,
    },
    readinessNotes: () => (cutoverStore.mode === "file" ? noJetStreamNotes(options.config) : []),
    listener: options.listener,
    logger: options.logger,
    openApi: buildOpenApiDocument(options.config, options.root),
  });
}

/**
 * Connects to NATS while the listeners already serve (not ready until then);
 * once connected, the requester, the live cutover state, the plans and the
 * dead-letter stream start. Resolves on the first connection.
 */
function connectInBackground(
  options: StartOptions,
  parts: Parts,
  signal: AbortSignal,
): Promise<void> {
  const connected = connectNats(options.config.nats, {
    status: parts.natsStatus,
    signal,
    reconnectTimeWaitMs: options.reconnectTimeWaitMs,
  }).then((nc) => {
    parts.nats.attach(nc);
    parts.cutoverStore.start(nc);
    parts.plan.start(nc);
    // Created ahead of the first letter; a server without JetStream only loses letters.
    parts.deadLetters.ensureStream().catch((error: unknown) => {
      parts.log.warn(`dead letters: stream TURNOUT_DLQ unavailable: ${String(error)}`);
    });
  });
  // Recorded in natsStatus for /readyz; logged too when connecting has stopped for
  // good (a secret that went missing), as the gateway will never be ready by itself.
  connected.catch((error: unknown) => {
    if (signal.aborted) return;
    const why = error instanceof Error ? error.message : String(error);
    parts.log.error(`NATS: gave up connecting, not ready: ${why}`);
  });
  return connected;
}

/**
 * Resolves once NATS is connected and the live cutover state loaded (or the
 * server has no JetStream), connecting gave up (logged, and /readyz says
 * why), `abort` fired, or `maxWaitMs` passed: then the listeners open anyway,
 * not ready, rather than leave a slow NATS looking like a dead worker.
 */
async function untilServable(
  connected: Promise<void>,
  wait: NonNullable<StartOptions["listenAfterNats"]>,
  parts: Parts,
): Promise<void> {
  if (wait.abort?.aborted) return;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), wait.maxWaitMs);
  });
  const aborted = new Promise<boolean>((resolve) =>
    wait.abort?.addEventListener("abort", () => resolve(false), { once: true }),
  );
  const settled = connected.then(
    () => parts.cutoverStore.settled.then(() => false),
    () => false,
  );
  const late = await Promise.race([settled, timedOut, aborted]);
  clearTimeout(timer);
  if (!late) return;
  const why = parts.natsStatus.isConnected()
    ? "live cutover state not loaded yet"
    : parts.natsStatus.describe();
  parts.log.warn(
    `not servable after ${wait.maxWaitMs / 1000} s; listening anyway, not ready: ${why}`,
  );
}

interface LogTarget {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/**
 * The admin listener's logger, for parts made before it: they log only once
 * the gateway runs, by when it is attached.
 */
class DeferredLog {
  #target: LogTarget | undefined;

  attach(target: LogTarget): void {
    this.#target = target;
  }
  info(message: string): void {
    this.#target?.info(message);
  }
  warn(message: string): void {
    this.#target?.warn(message);
  }
  error(message: string): void {
    this.#target?.error(message);
  }
}

function isTls(app: FastifyInstance): boolean {
  return app.server instanceof TlsServer;
}

async function listen(app: FastifyInstance, host: string, port: number): Promise<string> {
  await app.listen({ host, port });
  const address = app.server.address();
  if (address === null || typeof address === "string") return String(address);
  const shownHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const scheme = isTls(app) ? "https" : "http";
  return `${scheme}://${shownHost}:${address.port}`;
}

/** TURNOUT_ERR_LISTEN for a port that could not be had (in use, not permitted). */
export function cannotListen(error: unknown): TurnoutError {
  return new TurnoutError(
    "TURNOUT_ERR_LISTEN",
    `cannot listen: ${error instanceof Error ? error.message : String(error)}`,
    { cause: error },
  );
}
