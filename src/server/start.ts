/**
 * The gateway's lifecycle: build both listeners, listen, connect to NATS in the
 * background, and drain on close. The CLI and the tests start a gateway the same
 * way, through `startGateway`.
 */
import { Server as TlsServer } from "node:tls";
import type { FastifyInstance } from "fastify";
import type protobuf from "protobufjs";
import { LegacyUpstreams } from "../backends/legacy/upstreams.js";
import { connectNats } from "../backends/nats/connection.js";
import { DeadLetterStore } from "../backends/nats/dead-letters.js";
import { NatsLink } from "../backends/nats/link.js";
import { NatsStatus } from "../backends/nats/status.js";
import type { GatewayConfig } from "../config/types.js";
import { AdminToken } from "../control/admin-token.js";
import { CutoverState } from "../control/cutover-state.js";
import { CutoverStore } from "../control/cutover-store.js";
import { PlanDriver, type PlanDriverOptions } from "../control/plan-driver.js";
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
import { buildGateway } from "./gateway.js";
import type { ListenerOptions } from "./listener-options.js";

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
  /** Dead letters (TURNOUT_DLQ): NATS failures with no fallback. */
  readonly deadLetters: DeadLetterStore;
  /** Resolves once NATS is connected for the first time. */
  readonly connected: Promise<void>;
  /**
   * Graceful drain: stop accepting, let in-flight requests finish (their replies
   * still arrive), then drain NATS and close the admin listener.
   */
  close(): Promise<void>;
}

export async function startGateway(options: StartOptions): Promise<RunningGateway> {
  const { config, root } = options;
  const metrics = new GatewayMetrics();
  const nats = new NatsLink();
  const legacy = new LegacyUpstreams(config.routes);
  const cutover = new CutoverState(config.routes);
  cutover.subscribe((route, values) => {
    metrics.cutoverPercent.labels(route, "nats").set(values.nats);
    metrics.cutoverPercent.labels(route, "shadow").set(values.shadow);
  });
  const mismatches = new MismatchLog();
  const mirrors = new Mirrors(root, config.routes, {
    metrics,
    log: mismatches,
    limits: options.mirrorLimits,
  });
  const adminToken = new AdminToken(options.adminToken);
  const natsStatus = new NatsStatus(undefined, (state) =>
    metrics.natsConnected.set(state === "connected" ? 1 : 0),
  );
  let draining = false;
  const otel = options.otel === undefined ? otelOptionsFromEnv(process.env) : options.otel;
  // The SDK is only loaded when on.
  const spans: RequestSpans | undefined = otel ? await startRequestSpans(otel) : undefined;

  // Logs through the admin listener's logger (only once started, after buildAdmin).
  const cutoverStore = new CutoverStore(cutover, config.routes, {
    info: (message) => admin.log.info(message),
    warn: (message) => admin.log.warn(message),
  });
  const plan = new PlanDriver(
    {
      metrics,
      store: cutoverStore,
      routes: config.routes,
      log: {
        info: (message) => admin.log.info(message),
        warn: (message) => admin.log.warn(message),
      },
    },
    options.plan,
  );
  const deadLetters = new DeadLetterStore({
    connection: () => nats.connection,
    routes: config.routes,
    root,
    metrics,
    log: { warn: (message) => admin.log.warn(message) },
  });
  const readiness: ReadinessCheck[] = [
    () => (draining ? "shutting down" : undefined),
    () => (natsStatus.isConnected() ? undefined : natsStatus.describe()),
    () => (cutoverStore.mode === "starting" ? "live cutover state not loaded yet" : undefined),
  ];
  const admin = buildAdmin({
    metrics,
    readiness,
    api: {
      token: adminToken,
      routeNames: config.routes.map((r) => r.name),
      mismatches,
      cutover: { state: cutover, store: cutoverStore },
      deadLetters,
    },
    readinessNotes: () =>
      cutoverStore.mode === "file" ? ["cutover: file values (no JetStream)"] : [],
    listener: options.listener,
    logger: options.logger,
    openApi: buildOpenApiDocument(config, root),
  });
  const gateway = buildGateway({
    config,
    root,
    requester: nats,
    legacy,
    cutover,
    mirrors,
    adminToken,
    metrics,
    deadLetters,
    isDraining: () => draining,
    listener: options.listener,
    logger: options.logger,
    spans,
  });
  if (spans !== undefined) admin.log.info("OpenTelemetry: exporting request spans over OTLP/HTTP");

  const abort = new AbortController();
  const connected = connectNats(options.config.nats, {
    status: natsStatus,
    signal: abort.signal,
    reconnectTimeWaitMs: options.reconnectTimeWaitMs,
  }).then((nc) => {
    nats.attach(nc);
    cutoverStore.start(nc);
    plan.start(nc);
    // Created ahead of the first letter; a server without JetStream only loses letters.
    deadLetters.ensureStream().catch((error: unknown) => {
      admin.log.warn(`dead letters: stream ${"TURNOUT_DLQ"} unavailable: ${String(error)}`);
    });
  });
  const warnSpans = (error: unknown) =>
    admin.log.warn(`OpenTelemetry: spans not exported on close: ${String(error)}`);
  // Failures are already recorded in natsStatus for /readyz; don't crash on them here.
  connected.catch(() => {});

  const adminUrl = await listen(admin, options.host, options.adminPort);
  const url = await listen(gateway, options.host, options.port);

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
    deadLetters,
    connected,
    async close() {
      draining = true;
      await gateway.close();
      abort.abort();
      await plan.stop();
      await cutoverStore.stop();
      // Spans of the drained requests are exported before the exporter stops.
      await Promise.all([nats.drain(), legacy.close(), spans?.shutdown().catch(warnSpans)]);
      await admin.close();
    },
  };
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
