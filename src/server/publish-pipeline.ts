/**
 * The NATS path of a `mode: publish` route, compiled once at start:
 * parse (JSON + params -> protobuf, as in request mode) -> publish to JetStream
 * and wait for the stream's ack -> 202 `{"stream", "seq", "duplicate"}`.
 * The client's `Idempotency-Key` becomes `Nats-Msg-Id` as `<route name>:<key>`,
 * so the stream stores a retried request once (within its duplicate window) and
 * acks it as a duplicate. design.md says "as is"; scoped on purpose: JetStream's
 * duplicate window is per stream, so two routes publishing into one stream with
 * the same key (two clients' own counters, say) would drop each other's writes.
 * The route's `retry` applies as in request mode, with the key standing for
 * idempotency: a publish that reached no one is retried; one that timed out
 * (the stream may have stored it) only when it carries a key, as the stream
 * then drops the second copy. A duplicate ack is checked against the stored
 * message: a key reused for another request is a 422, not a silent drop.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { PubAck, StoredMsg } from "@nats-io/jetstream";
import { errors } from "@nats-io/transport-node";
import type protobuf from "protobufjs";
import { isJetStreamMissing } from "../backends/nats/connection.js";
import { compileRequestHeaders } from "../backends/nats/headers.js";
import { hasJetStream, type JetStreamSource, type Requester } from "../backends/nats/link.js";
import { tooLargeForServer } from "../backends/nats/requester.js";
import { compileRetry } from "../backends/resilience/retry.js";
import { compileRouteCodec, parseJsonBody } from "../codec/index.js";
import type { RouteConfig } from "../config/types.js";
import { TurnoutError } from "../errors.js";
import type { RouteMetrics } from "../observability/metrics.js";
import { compileSubject } from "../routing/subject.js";
import {
  type Answer,
  JSON_CONTENT_TYPE,
  type RouteCall,
  type RouteInput,
} from "./nats-pipeline.js";

export const IDEMPOTENCY_KEY_HEADER = "idempotency-key";

export function compilePublishPipeline(
  route: RouteConfig,
  root: protobuf.Root,
  requester: Requester,
  metrics: RouteMetrics,
): RouteCall {
  const codec = compileRouteCodec(root, route);
  const subjectOf = compileSubject(route.subject);
  const headersOf = compileRequestHeaders(route.name, route.headers);
  const msgIdPrefix = `${route.name}:`;
  const policy = { ...route.retry, timeoutMs: route.timeoutMs };
  const countRetry = metrics.retryCounter("nats");
  const retryingKeyed = compileRetry({ ...policy, idempotent: true }, countRetry);
  const retryingUnkeyed = compileRetry({ ...policy, idempotent: false }, countRetry);

  return (input, shadow = false) => {
    const body =
      input.body === undefined || input.body === "" ? undefined : parseJsonBody(input.body);
    // Bound first: an empty path param is a 404 (no route), also where the subject uses it.
    const payload = codec.encodeRequest(input.params, input.query, body);
    const subject = subjectOf(input.params);
    // Payload sizes describe what clients send: a mirror is not counted.
    if (input.body !== undefined && !shadow) {
      metrics.observePayload("request", "json", Buffer.byteLength(input.body));
    }
    if (!shadow) metrics.observePayload("request", "protobuf", payload.length);
    return () => publishOnce(input, subject, payload, shadow);
  };

  async function publishOnce(
    input: RouteInput,
    subject: string,
    payload: Uint8Array,
    shadow: boolean,
  ): Promise<Answer> {
    if (!hasJetStream(requester)) {
      throw new TurnoutError("TURNOUT_ERR_NOT_CONNECTED", "JetStream is not available");
    }
    const key = idempotencyKeyOf(input.headers);
    const msgId = key === undefined ? undefined : msgIdPrefix + key;
    // Nats-Msg-Id goes into the headers' wire form, not through `msgID`: the
    // JetStream client would set() it on a MsgHdrs, which encodes as UTF-8.
    const headers = headersOf(input.requestId, input.headers, shadow, msgId);

    // The client is taken per attempt: while NATS reconnects it throws
    // NOT_CONNECTED, which is retried like any publish that reached no one.
    // A timed-out attempt may have been stored: a retry of it is then acked as a
    // duplicate of the client's own request, which was stored once, as asked.
    let unackedAttempt = false;
    const publish = async (timeout = route.timeoutMs) =>
      requester
        .jetstream()
        .publish(subject, payload, { headers, timeout })
        .catch((err: unknown) => {
          const error = publishError(err, subject);
          if (error.code === "TURNOUT_ERR_TIMEOUT") unackedAttempt = true;
          throw error;
        });
    const retrying = key === undefined ? retryingUnkeyed : retryingKeyed;
    // A mirrored request is never retried: it must not add load to a struggling side.
    const ack = await (shadow ? publish() : retrying(publish)).catch((err: unknown) =>
      explainNoStream(err, requester, subject),
    );
    if (ack.duplicate && key !== undefined) {
      await refuseKeyReuse(requester, ack, subject, payload, key);
    }
    const duplicate = ack.duplicate && !unackedAttempt;
    const json = JSON.stringify({ stream: ack.stream, seq: ack.seq, duplicate });
    return { status: 202, contentType: JSON_CONTENT_TYPE, body: json };
  }
}

/**
 * A duplicate ack says only that the stream has seen the key. The stored
 * message is read back to tell a retry (same subject, same bytes) from another
 * request reusing the key, which the stream dropped while the client would be
 * told it was stored. One extra JetStream API call, on duplicates only; when
 * the message cannot be read back (removed by the stream's limits, say), the
 * duplicate ack stands.
 */
async function refuseKeyReuse(
  requester: JetStreamSource,
  ack: PubAck,
  subject: string,
  payload: Uint8Array,
  key: string,
): Promise<void> {
  let stored: StoredMsg | null;
  try {
    // In the try: NATS dropping right after the ack must not fail a stored request.
    const jsm = await requester.jetstream().jetstreamManager(false);
    stored = await jsm.streams.getMessage(ack.stream, { seq: ack.seq });
  } catch {
    return;
  }
  if (stored === null || (stored.subject === subject && Buffer.from(payload).equals(stored.data))) {
    return;
  }
  throw new TurnoutError(
    "TURNOUT_ERR_IDEMPOTENCY_KEY_REUSED",
    `Idempotency-Key ${JSON.stringify(key)} was already used for a different request ` +
      `(stored as ${ack.stream} seq ${ack.seq}); use a new key for a new request`,
    { field: IDEMPOTENCY_KEY_HEADER },
  );
}

/**
 * nats.js reports a subject no stream stores and a server without JetStream
 * alike, yet they ask different things of an operator (create a stream, or
 * enable JetStream): after a NO_STREAM the server is asked which it is (one
 * JetStream API call, on this failure only). Always throws.
 */
async function explainNoStream(
  err: unknown,
  requester: JetStreamSource,
  subject: string,
): Promise<never> {
  if (!(err instanceof TurnoutError) || err.code !== "TURNOUT_ERR_NO_STREAM") throw err;
  try {
    const jsm = await requester.jetstream().jetstreamManager(false);
    await jsm.getAccountInfo();
  } catch (asked) {
    if (isJetStreamMissing(asked)) {
      throw new TurnoutError(
        "TURNOUT_ERR_NO_JETSTREAM",
        `the NATS server runs without JetStream, which a publish route needs to store ${subject}`,
        { cause: err },
      );
    }
  }
  throw err;
}

/**
 * The first `Idempotency-Key` value, unless empty. Not trimmed: Node already
 * stripped the spaces around it, and trim() would eat a trailing 0xA0 byte.
 */
function idempotencyKeyOf(incoming: IncomingHttpHeaders): string | undefined {
  const value = incoming[IDEMPOTENCY_KEY_HEADER];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined || first === "" ? undefined : first;
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
  // The client's doing, as in request mode: a 413 that leaves the breaker alone.
  const tooLarge = tooLargeForServer(err, subject);
  if (tooLarge !== undefined) return tooLarge;
  // The stream refused the message (limits, wrong expectations...): its reason, as a 502.
  const message = err instanceof Error ? err.message : String(err);
  return new TurnoutError("TURNOUT_ERR_WORKER", `JetStream refused ${subject}: ${message}`, {
    cause: err,
  });
}

function isNoResponders(err: unknown): boolean {
  return err instanceof errors.RequestError && err.isNoResponders();
}
