/**
 * The NATS path of one route, compiled once at start:
 * parse (JSON + params -> protobuf) -> call (request/reply, retried per the
 * route's policy) -> encode (protobuf -> JSON).
 * It returns the answer to send; every failure is a TurnoutError that
 * server/problem.ts turns into problem+json.
 */
import type { IncomingHttpHeaders } from "node:http";
import type protobuf from "protobufjs";
import { compileRequestHeaders } from "../backends/nats/headers.js";
import type { Requester } from "../backends/nats/link.js";
import { interpretReply } from "../backends/nats/reply.js";
import { compileRetry } from "../backends/resilience/retry.js";
import { compileRouteCodec, parseJsonBody } from "../codec/index.js";
import type { RouteConfig } from "../config/types.js";
import { TurnoutError } from "../errors.js";
import type { RouteMetrics } from "../observability/metrics.js";
import { compileSubject } from "../routing/subject.js";

/** What the HTTP side hands to a backend: already split, not yet interpreted. */
export interface RouteInput {
  readonly requestId: string;
  readonly params: Readonly<Record<string, string>>;
  readonly query: Readonly<Record<string, string | string[]>>;
  /** The raw JSON body text, or undefined when the request had none. */
  readonly body: string | undefined;
  readonly headers: IncomingHttpHeaders;
}

export interface Answer {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

/**
 * Binds and encodes a request at once (its 4xx thrown then, before any breaker
 * or retry sees it), and returns the call to the route's NATS workers;
 * `shadow` marks a mirrored request.
 */
export type RouteCall = (input: RouteInput, shadow?: boolean) => () => Promise<Answer>;

export const JSON_CONTENT_TYPE = "application/json; charset=utf-8";

export function compileNatsPipeline(
  route: RouteConfig,
  root: protobuf.Root,
  requester: Requester,
  metrics: RouteMetrics,
): RouteCall {
  const codec = compileRouteCodec(root, route);
  const subjectOf = compileSubject(route.subject);
  const headersOf = compileRequestHeaders(route.name, route.headers);
  const retrying = compileRetry(
    { ...route.retry, timeoutMs: route.timeoutMs, idempotent: route.idempotent },
    metrics.retryCounter("nats"),
  );

  return (input, shadow = false) => {
    const body =
      input.body === undefined || input.body === "" ? undefined : parseJsonBody(input.body);
    // Bound first: an empty path param is a 404 (no route), also where the subject uses it.
    const payload = codec.encodeRequest(input.params, input.query, body);
    const subject = subjectOf(input.params);
    // Payload sizes describe what clients send and get: a mirror is neither.
    if (input.body !== undefined && !shadow) {
      metrics.observePayload("request", "json", Buffer.byteLength(input.body));
    }
    if (!shadow) metrics.observePayload("request", "protobuf", payload.length);

    const headers = headersOf(input.requestId, input.headers, shadow);
    const send = (timeoutMs = route.timeoutMs) =>
      requester.request(subject, payload, headers, timeoutMs);
    return async () => {
      // A mirrored request is never retried: it must not add load to a struggling side.
      const reply = interpretReply(await (shadow ? send() : retrying(send)));
      if (reply.kind === "ok") {
        const json = codec.decodeResponse(reply.data);
        if (!shadow) observeResponse(metrics, reply.data, json);
        return { status: reply.status, contentType: JSON_CONTENT_TYPE, body: json };
      }
      const errorJson = reply.data.length > 0 ? codec.decodeError(reply.data) : undefined;
      if (errorJson !== undefined) {
        if (!shadow) observeResponse(metrics, reply.data, errorJson);
        return { status: reply.status, contentType: JSON_CONTENT_TYPE, body: errorJson };
      }
      throw new TurnoutError("TURNOUT_ERR_WORKER", reply.message, { status: reply.status });
    };
  };
}

/**
 * Both sides of a reply the client gets as JSON, or neither: a bodiless error
 * (answered as problem+json) or an undecodable reply would count a protobuf
 * size with no JSON beside it, and skew the comparison towards protobuf.
 */
function observeResponse(metrics: RouteMetrics, protobuf: Uint8Array, json: string): void {
  metrics.observePayload("response", "protobuf", protobuf.length);
  metrics.observePayload("response", "json", Buffer.byteLength(json));
}
