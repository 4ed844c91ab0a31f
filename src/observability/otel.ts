/**
 * OpenTelemetry spans, off unless the standard OTEL_* variables ask for OTLP
 * export (see `otelOptionsFromEnv`). When off, nothing here is loaded beyond
 * this module: the SDK is imported on start, and the gateway adds no hook.
 *
 * When on, each request gets one SERVER span, started before any other hook
 * (so 404s and 429s have one too; a request the router refused, which runs no
 * hook, gets its span from `refused`) as a child of the client's `traceparent`,
 * if valid. The request's `traceparent` header is then rewritten to name this
 * span as the parent, so every call made for the request (NATS worker,
 * legacy upstream, mirror) hangs under it; trace.ts `ensureTraceparent` keeps
 * that header as it is. The span ends when the response is sent; a
 * BatchSpanProcessor exports it over OTLP/HTTP (JSON).
 */
import type {
  Attributes,
  Context,
  createTraceState,
  ROOT_CONTEXT,
  Span,
  SpanKind,
  SpanStatusCode,
  Tracer,
  trace,
} from "@opentelemetry/api";
import type { BasicTracerProvider } from "@opentelemetry/sdk-trace-base";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { pathTemplate } from "../config/route-paths.js";
import type { RouteConfig } from "../config/types.js";
import { compileSubject, type SubjectBuilder } from "../routing/subject.js";
import { formatTraceparent, parseTraceparent } from "./trace.js";

export interface OtelOptions {
  /**
   * Full OTLP/HTTP traces URL (e.g. `http://collector:4318/v1/traces`). Unset:
   * the exporter reads OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, then
   * OTEL_EXPORTER_OTLP_ENDPOINT + `/v1/traces`, then `http://localhost:4318/v1/traces`.
   */
  readonly url?: string;
  /** `service.name`; unset: OTEL_SERVICE_NAME, else OTEL_RESOURCE_ATTRIBUTES' one, else `turnout`. */
  readonly serviceName?: string;
}

const DEFAULT_SERVICE_NAME = "turnout";

const isSet = (value: string | undefined): value is string =>
  value !== undefined && value.trim() !== "";

/**
 * Spans are on when OTEL_SDK_DISABLED is not `true` and either
 * OTEL_TRACES_EXPORTER lists `otlp`, or OTEL_TRACES_EXPORTER is unset/empty and
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT is set.
 * (`OTEL_TRACES_EXPORTER=none`, or only exporters other than otlp, keep them off.)
 */
export function otelOptionsFromEnv(env: Readonly<NodeJS.ProcessEnv>): OtelOptions | undefined {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true") return undefined;
  const exporters = env.OTEL_TRACES_EXPORTER;
  const on = isSet(exporters)
    ? exporters.split(",").some((name) => name.trim().toLowerCase() === "otlp")
    : isSet(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) || isSet(env.OTEL_EXPORTER_OTLP_ENDPOINT);
  if (!on) return undefined;
  // The URL is left to the exporter, which also reads the OTEL_EXPORTER_OTLP_* headers and timeout.
  return isSet(env.OTEL_SERVICE_NAME) ? { serviceName: env.OTEL_SERVICE_NAME.trim() } : {};
}

declare module "fastify" {
  interface FastifyRequest {
    /** The request's span while it is open (only decorated when spans are on). */
    otelSpan: Span | null;
  }
}

/** What the gateway needs from the tracer: hooks on its requests, and a flush on close. */
export interface RequestSpans {
  /** Adds the span hooks to the public server (called once, when it is built). */
  register(app: FastifyInstance, routes: readonly RouteConfig[]): void;
  /**
   * A span for a request the router refused (no hook runs for it), on `route`
   * when the refusal names one; it ends when the answer is sent.
   */
  refused(req: FastifyRequest, reply: FastifyReply, route: string | undefined): void;
  /**
   * Ends the request's span, if still open, with `status`: for an answer
   * recorded outside onResponse (a client gone, a stream cut short), which
   * Fastify follows with no hook.
   */
  ended(req: FastifyRequest, status: number): void;
  /** Exports the spans still buffered and stops the exporter. */
  shutdown(): Promise<void>;
}

/** The parts of @opentelemetry/api used per request, taken from its lazy import. */
interface Api {
  readonly trace: typeof trace;
  readonly rootContext: typeof ROOT_CONTEXT;
  readonly createTraceState: typeof createTraceState;
  readonly serverKind: SpanKind.SERVER;
  readonly errorStatus: SpanStatusCode.ERROR;
}

/** Per route, made once: the span name, its first attributes and the NATS subject. */
interface RouteSpan {
  readonly name: string;
  readonly attributes: Attributes;
  readonly subjectTemplate: string;
  readonly subjectOf: SubjectBuilder;
}

/** Loads the SDK (only now) and starts a tracer provider exporting over OTLP/HTTP. */
export async function startRequestSpans(options: OtelOptions): Promise<RequestSpans> {
  const [api, sdk, resources, otlp] = await Promise.all([
    import("@opentelemetry/api"),
    import("@opentelemetry/sdk-trace-base"),
    import("@opentelemetry/resources"),
    import("@opentelemetry/exporter-trace-otlp-http"),
  ]);
  // Lowest to highest precedence: SDK defaults, ours, OTEL_RESOURCE_ATTRIBUTES/OTEL_SERVICE_NAME, options.
  let resource = resources
    .defaultResource()
    .merge(resources.resourceFromAttributes({ "service.name": DEFAULT_SERVICE_NAME }))
    .merge(resources.detectResources({ detectors: [resources.envDetector] }));
  if (options.serviceName !== undefined) {
    resource = resource.merge(
      resources.resourceFromAttributes({ "service.name": options.serviceName }),
    );
  }
  const exporter = new otlp.OTLPTraceExporter(
    options.url === undefined ? {} : { url: options.url },
  );
  // Sampler (OTEL_TRACES_SAMPLER, default parent-based always-on), limits and
  // batching (OTEL_BSP_*) come from the SDK's own env handling.
  const provider = new sdk.BasicTracerProvider({
    resource,
    spanProcessors: [new sdk.BatchSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer("turnout");
  return new OtelRequestSpans(
    {
      trace: api.trace,
      rootContext: api.ROOT_CONTEXT,
      createTraceState: api.createTraceState,
      serverKind: api.SpanKind.SERVER,
      errorStatus: api.SpanStatusCode.ERROR,
    },
    tracer,
    provider,
  );
}

class OtelRequestSpans implements RequestSpans {
  readonly #api: Api;
  readonly #tracer: Tracer;
  readonly #provider: BasicTracerProvider;
  #byName = new Map<string, RouteSpan>();

  constructor(api: Api, tracer: Tracer, provider: BasicTracerProvider) {
    this.#api = api;
    this.#tracer = tracer;
    this.#provider = provider;
  }

  register(app: FastifyInstance, routes: readonly RouteConfig[]): void {
    const byName = new Map(routes.map((route) => [route.name, routeSpan(route)]));
    this.#byName = byName;
    app.decorateRequest("otelSpan", null);
    // Callback-style hooks, as in gateway.ts: an async hook costs a promise per request.
    app.addHook("onRequest", (req, _reply, done) => {
      const routeName = req.routeOptions.config.routeName;
      this.#start(req, routeName === undefined ? undefined : byName.get(routeName));
      done();
    });
    app.addHook("onResponse", (req, reply, done) => {
      const routeName = req.routeOptions.config.routeName;
      this.#end(req, reply.statusCode, routeName === undefined ? undefined : byName.get(routeName));
      done();
    });
    // A client gone before its answer: no onResponse may follow; keep the span anyway.
    app.addHook("onRequestAbort", (req, done) => {
      const span = req.otelSpan;
      if (span !== null) {
        req.otelSpan = null;
        span.setAttribute("turnout.client_aborted", true);
        span.setAttribute("turnout.backend", req.backend);
        span.end();
      }
      done();
    });
  }

  refused(req: FastifyRequest, reply: FastifyReply, routeName: string | undefined): void {
    // Undefined, not null, here: a request the router refused may miss the decoration.
    if (req.otelSpan !== null && req.otelSpan !== undefined) return;
    const route = routeName === undefined ? undefined : this.#byName.get(routeName);
    this.#start(req, route);
    reply.raw.once("finish", () => this.#end(req, reply.statusCode, route));
  }

  ended(req: FastifyRequest, status: number): void {
    // Undefined when the router refused the request before the decoration.
    if (req.otelSpan === null || req.otelSpan === undefined) return;
    const routeName = req.routeOptions.config.routeName;
    this.#end(req, status, routeName === undefined ? undefined : this.#byName.get(routeName));
  }

  async shutdown(): Promise<void> {
    await this.#provider.shutdown();
  }

  /**
   * Starts the span and points the request's `traceparent` at it: trace id
   * and sampling from the span, parent id = the span's own id.
   */
  #start(req: FastifyRequest, route: RouteSpan | undefined): void {
    const api = this.#api;
    const headers = req.headers;
    const given = headers.traceparent;
    const parent = parseTraceparent(given);
    let context: Context = api.rootContext;
    if (parent !== undefined) {
      const tracestate = headers.tracestate;
      context = api.trace.setSpanContext(context, {
        traceId: parent.traceId,
        spanId: parent.parentId,
        traceFlags: Number.parseInt(parent.flags, 16),
        isRemote: true,
        traceState:
          typeof tracestate === "string" && tracestate !== ""
            ? api.createTraceState(tracestate)
            : undefined,
      });
    }
    const span = this.#tracer.startSpan(
      route?.name ?? req.method,
      {
        kind: api.serverKind,
        attributes: route?.attributes ?? { "http.request.method": req.method },
      },
      context,
    );
    const own = span.spanContext();
    headers.traceparent = formatTraceparent(own.traceId, own.spanId, own.traceFlags);
    // As in ensureTraceparent: the tracestate of a parent that cannot be parsed is dropped.
    if (parent === undefined && given !== undefined) delete headers.tracestate;
    req.otelSpan = span;
  }

  #end(req: FastifyRequest, status: number, route: RouteSpan | undefined): void {
    const span = req.otelSpan;
    if (span === null) return;
    req.otelSpan = null;
    const backend = req.backend;
    span.setAttribute("http.response.status_code", status);
    span.setAttribute("turnout.backend", backend);
    if (backend === "nats" && route !== undefined) {
      span.setAttribute("messaging.system", "nats");
      span.setAttribute("messaging.destination.template", route.subjectTemplate);
      try {
        span.setAttribute(
          "messaging.destination.name",
          route.subjectOf(req.params as Record<string, string>),
        );
      } catch {
        // A param that makes no valid subject was refused before any call: no subject to name.
      }
    }
    if (status >= 500) {
      span.setAttribute("error.type", String(status));
      span.setStatus({ code: this.#api.errorStatus });
    }
    span.end();
  }
}

/** `GET /v1/users/:id` -> name `GET /v1/users/{id}`, the route template (never the raw path). */
function routeSpan(route: RouteConfig): RouteSpan {
  const template = pathTemplate(route.path);
  return {
    name: `${route.method} ${template}`,
    attributes: Object.freeze({
      "http.request.method": route.method,
      "http.route": template,
      "turnout.route": route.name,
    }),
    subjectTemplate: route.subject,
    subjectOf: compileSubject(route.subject),
  };
}
