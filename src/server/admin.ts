/**
 * The admin listener (default :9090): liveness, readiness with reasons,
 * Prometheus metrics and the OpenAPI document of the public routes. Kept apart from the public port so that probes and
 * scrapes never compete with, or get exposed to, client traffic.
 */
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from "fastify";
import { type AdminApiDeps, authorize, registerAdminApi } from "../control/admin-api.js";
import { TurnoutError } from "../errors.js";
import { reportClusterMetrics } from "../observability/cluster-metrics.js";
import type { GatewayMetrics } from "../observability/metrics.js";
import { registerOpenApi } from "../openapi/index.js";
import { type ListenerOptions, listenerServerOptions } from "./listener-options.js";
import { isInternal, PROBLEM_CONTENT_TYPE, toProblem } from "./problem.js";
import { requestIdOf } from "./request-id.js";
import { pathOf } from "./request-path.js";

/** A readiness check answers undefined when fine, or the reason it is not. */
export type ReadinessCheck = () => string | undefined;

export interface AdminDeps {
  readonly metrics: GatewayMetrics;
  readonly readiness: ReadonlyArray<ReadinessCheck>;
  /** Remarks added to `/readyz` without changing its status (e.g. running on file values). */
  readonly readinessNotes?: () => string[];
  readonly api: AdminApiDeps;
  readonly listener?: ListenerOptions;
  readonly logger?: boolean | { level: string };
  /** The OpenAPI document of the public routes, served at `/openapi.json`. */
  readonly openApi?: object;
}

export function buildAdmin(deps: AdminDeps): FastifyInstance {
  const app = Fastify({
    logger: deps.logger ?? false,
    // Not Fastify's two lines per call: one of ours (logAdminCalls), and for
    // probes and scrapes, every few seconds, only at debug.
    logController: new LogController({ disableRequestLogging: true }),
    // Ids as on the public listener: the caller's X-Request-Id, else a UUID, sent back.
    genReqId: requestIdOf,
    requestIdHeader: false,
    return503OnClosing: false,
    ...listenerServerOptions(deps.listener ?? {}),
    // A URL the router cannot read: problem+json too, not Fastify's own JSON.
    frameworkErrors: sendProblem,
  });

  app.setErrorHandler(sendProblem);
  app.addHook("onRequest", (req, reply, done) => {
    reply.header("x-request-id", req.id);
    done();
  });
  logAdminCalls(app);
  app.setNotFoundHandler(async (req) => {
    // Under /admin, only a caller with the token learns that a path or method
    // does not exist: the same 401/403 as a known path, so none can be probed.
    if (isAdminPath(req.url)) authorize(deps.api.token, req);
    throw new TurnoutError(
      "TURNOUT_ERR_NOT_FOUND",
      `no admin endpoint for ${req.method} ${pathOf(req.url)}`,
    );
  });
  registerAdminApi(app, deps.api);

  app.get("/healthz", async () => ({ status: "ok" }));
  if (deps.openApi !== undefined) registerOpenApi(app, deps.openApi);

  app.get("/readyz", async (_req, reply) => {
    const reasons = deps.readiness.map((check) => check()).filter((r) => r !== undefined);
    const notes = deps.readinessNotes?.() ?? [];
    const extra = notes.length > 0 ? { notes } : {};
    if (reasons.length > 0) return reply.code(503).send({ status: "not ready", reasons, ...extra });
    return { status: "ready", ...extra };
  });

  // Under `--workers N` a scrape answers for all workers (cluster-metrics.ts).
  const clusterMetrics = reportClusterMetrics(deps.metrics.registry);
  app.get("/metrics", async (req, reply) => {
    const { registry } = deps.metrics;
    if (clusterMetrics === undefined) {
      return reply.header("content-type", registry.contentType).send(await registry.metrics());
    }
    try {
      const text = await clusterMetrics.scrape();
      return reply.header("content-type", registry.contentType).send(text);
    } catch (error) {
      // A TURNOUT_ERR_METRICS_UNAVAILABLE (503), never a partial sum: Prometheus
      // would read one as counters resetting.
      req.log.warn(`/metrics: ${error instanceof Error ? error.message : String(error)}`);
      throw error;
    }
  });
  return app;
}

function sendProblem(error: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const problem = toProblem(error, req.id);
  // The answer says "see the gateway's log": it must be there.
  if (isInternal(problem)) req.log.error({ err: error, requestId: req.id }, "admin call failed");
  if (problem.status === 401) reply.header("www-authenticate", 'Bearer realm="turnout-admin"');
  reply.header("x-request-id", req.id);
  return reply
    .code(problem.status)
    .header("content-type", PROBLEM_CONTENT_TYPE)
    .send(JSON.stringify(problem));
}

/**
 * One line per call: at info under /admin (who changed what is read from it,
 * refused tokens included), at debug for /healthz, /readyz, /metrics and
 * /openapi.json, which probes and scrapers call every few seconds. Like the
 * gateway's request line: no headers, no query string.
 */
function logAdminCalls(app: FastifyInstance): void {
  app.addHook("onResponse", (req, reply, done) => {
    const durationMs = Math.round(reply.elapsedTime * 1000) / 1000;
    const call = { method: req.method, path: pathOf(req.url), status: reply.statusCode };
    const line = { requestId: req.id, ...call, durationMs };
    if (isAdminPath(req.url)) req.log.info(line, "admin call");
    else req.log.debug(line, "admin call");
    done();
  });
}

/** Compared decoded, as the router matches (`/%61dmin/routes` is `/admin/routes`). */
function isAdminPath(url: string): boolean {
  let path = pathOf(url);
  try {
    path = decodeURIComponent(path);
  } catch {
    // Not valid percent-encoding: compared as sent.
  }
  return path === "/admin" || path.startsWith("/admin/");
}
