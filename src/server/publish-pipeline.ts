/**
 * The NATS path of a `mode: publish` route, compiled once at start:
 * parse (JSON + params -> protobuf, as in request mode) -> publish to JetStream
 * and wait for the stream's ack -> 202 `{"stream", "seq", "duplicate"}`.
 * The client's `Idempotency-Key` becomes `Nats-Msg-Id`, so the stream stores a
 * retried request once (within its duplicate window) and acks it as a duplicate.
 * The route's `retry` applies as in request mode, with the key standing for
 * idempotency: a publish that reached no one is retried; one that timed out
 * (the stream may have stored it) only when it carries a key, as the stream
 * then drops the second copy.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { JetStreamPublishOptions } from "@nats-io/jetstream";
import { errors, type MsgHdrs, headers as natsHeaders } from "@nats-io/transport-node";
import type protobuf from "protobufjs";
import { REQUEST_ID_HEADER, ROUTE_HEADER, SHADOW_HEADER } from "../backends/nats/headers.js";
import { hasJetStream, type Requester } from "../backends/nats/link.js";
import { compileRetry } from "../backends/resilience/retry.js";
import { compileRouteCodec, parseJsonBody } from "../codec/index.js";
import type { RouteConfig } from "../config/types.js";
import { TurnoutError } from "../errors.js";
import type { RouteMetrics } from "../observability/metrics.js";
import { compileSubject } from "../routing/subject.js";
import { JSON_CONTENT_TYPE, type RouteCall } from "./nats-pipeline.js";

export const IDEMPOTENCY_KEY_HEADER = "idempotency-key";

export function compilePublishPipeline(
  route: RouteConfig,
  root: protobuf.Root,
  requester: Requester,
  metrics: RouteMetrics,
): RouteCall {
  const codec = compileRouteCodec(root, route);
  const subjectOf = compileSubject(route.subject);
  const forwarded = ["traceparent", "tracestate", ...route.headers];
  const policy = { ...route.retry, timeoutMs: route.timeoutMs };
  const countRetry = metrics.retryCounter("nats");
  const retryingKeyed = compileRetry({ ...policy, idempotent: true }, countRetry);
  const retryingUnkeyed = compileRetry({ ...policy, idempotent: false }, countRetry);

  return async (input, shadow = false) => {
    const subject = subjectOf(input.params);
    const body =
      input.body === undefined || input.body === "" ? undefined : parseJsonBody(input.body);
    const payload = codec.encodeRequest(input.params, input.query, body);
    if (input.body !== undefined) {
      metrics.observePayload("request", "json", Buffer.byteLength(input.body));
    }
    metrics.observePayload("request", "protobuf", payload.length);

    if (!hasJetStream(requester)) {
      throw new TurnoutError("TURNOUT_ERR_NOT_CONNECTED", "JetStream is not available");
    }
    const options: Partial<JetStreamPublishOptions> = {
      headers: headersOf(route.name, forwarded, input.requestId, input.headers, shadow),
      timeout: route.timeoutMs,
    };
    const key = idempotencyKeyOf(input.headers);
    if (key !== undefined) options.msgID = key;

    // The client is taken per attempt: while NATS reconnects it throws
    // NOT_CONNECTED, which is retried like any publish that reached no one.
    const publish = async () =>
      requester
        .jetstream()
        .publish(subject, payload, options)
        .catch((err: unknown) => {
          throw publishError(err, subject);
        });
    const retrying = key === undefined ? retryingUnkeyed : retryingKeyed;
    // A mirrored request is never retried: it must not add load to a struggling side.
    const ack = await (shadow ? publish() : retrying(publish));
    const json = JSON.stringify({ stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate });
    return { status: 202, contentType: JSON_CONTENT_TYPE, body: json };
  };
}

/** The first non-empty `Idempotency-Key` value, trimmed. */
function idempotencyKeyOf(incoming: IncomingHttpHeaders): string | undefined {
  const value = incoming[IDEMPOTENCY_KEY_HEADER];
  const first = (Array.isArray(value) ? value[0] : value)?.trim();
  return first === undefined || first === "" ? undefined : first;
}

/**
 * The same headers a request-mode worker gets (see backends/nats/headers.ts), as a
 * real MsgHdrs: the JetStream client adds `Nats-Msg-Id` to it with `set()`.
 */
function headersOf(
  routeName: string,
  forwarded: readonly string[],
  requestId: string,
  incoming: IncomingHttpHeaders,
  shadow: boolean,
): MsgHdrs {
  const h = natsHeaders();
  h.set(ROUTE_HEADER, routeName);
  h.set(REQUEST_ID_HEADER, requestId);
  if (shadow) h.set(SHADOW_HEADER, "1");
  for (const name of forwarded) {
    const value = incoming[name];
    if (value === undefined || value === "") continue;
    if (typeof value === "string") h.append(name, value.trim());
    else for (const one of value) h.append(name, one.trim());
  }
  return h;
}

function publishError(err: unknown, subject: string): TurnoutError {
  if (err instanceof TurnoutError) return err;
  const name = err instanceof Error ? err.name : "";
  // No stream listens on the subject: the publish request found no responders,
  // which the JetStream client reports as "jetstream is not enabled".
  if (name === "JetStreamNotEnabled" || isNoResponders(err)) {
    return new TurnoutError("TURNOUT_ERR_NO_STREAM", `no JetStream stream stores ${subject}`, {
      cause: err,
    });
  }
  if (err instanceof errors.TimeoutError) {
    return new TurnoutError("TURNOUT_ERR_TIMEOUT", `no JetStream ack for ${subject} in time`, {
      cause: err,
    });
  }
  if (
    err instanceof errors.ClosedConnectionError ||
    err instanceof errors.DrainingConnectionError
  ) {
    return new TurnoutError("TURNOUT_ERR_NOT_CONNECTED", `cannot publish to ${subject}`, {
      cause: err,
    });
  }
  // The stream refused the message (limits, wrong expectations...): its reason, as a 502.
  const message = err instanceof Error ? err.message : String(err);
  return new TurnoutError("TURNOUT_ERR_WORKER", `JetStream refused ${subject}: ${message}`, {
    cause: err,
  });
}

function isNoResponders(err: unknown): boolean {
  return err instanceof errors.RequestError && err.isNoResponders();
}
