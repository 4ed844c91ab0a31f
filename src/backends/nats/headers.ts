/**
 * The headers of a request to a worker (design.md, "Wire conventions on NATS"),
 * written straight into their wire form. nats.js's publish only calls `encode()`
 * on the headers it is given; building a MsgHdrs map per request and having it
 * serialised again cost more than the whole protobuf encoding.
 *
 * Node hands HTTP header values over as latin1 strings (one char per byte the
 * client sent). They go on the wire as those same bytes: encoding them as UTF-8
 * would turn a client's UTF-8 `café` into `cafÃ©`.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { MsgHdrs } from "@nats-io/transport-node";

export const ROUTE_HEADER = "Turnout-Route";
export const REQUEST_ID_HEADER = "X-Request-Id";
/** Marks a mirrored request: a worker may skip side effects it must not repeat. */
export const SHADOW_HEADER = "Turnout-Shadow";
/** JetStream's de-duplication id (`mode: publish`). */
export const MSG_ID_HEADER = "Nats-Msg-Id";

/** Headers already in NATS wire form (`NATS/1.0\r\nKey: value\r\n...\r\n\r\n`). */
class EncodedHeaders {
  constructor(readonly bytes: Uint8Array) {}
  encode(): Uint8Array {
    return this.bytes;
  }
}

export type RequestHeaders = (
  requestId: string,
  incoming: IncomingHttpHeaders,
  shadow?: boolean,
  /** `Nats-Msg-Id`, a latin1 string like the HTTP headers it comes from. */
  msgId?: string,
) => MsgHdrs;

/**
 * Compiles, once per route, the builder of its request headers: `Turnout-Route`,
 * `X-Request-Id`, `traceparent`/`tracestate` when present and the HTTP headers
 * the route passes on (lower-case names; a repeated header keeps every value),
 * `Turnout-Shadow: 1` on a mirrored request and `Nats-Msg-Id` when given.
 * Values cannot hold CR or LF: Node's HTTP parser refuses them, and request ids
 * are checked before they get here. They are not trimmed: Node already stripped
 * the spaces and tabs around them, and String.trim() would also eat a trailing
 * 0xA0 byte, the end of a UTF-8 `à`.
 */
export function compileRequestHeaders(
  routeName: string,
  forwarded: readonly string[],
): RequestHeaders {
  // Route names are ASCII (config/route.ts), so the whole block is latin1-safe.
  const prefix = `NATS/1.0\r\n${ROUTE_HEADER}: ${routeName}\r\n${REQUEST_ID_HEADER}: `;
  const names = ["traceparent", "tracestate", ...forwarded];
  return (requestId, incoming, shadow = false, msgId = undefined) => {
    let block = prefix + requestId;
    if (shadow) block += `\r\n${SHADOW_HEADER}: 1`;
    if (msgId !== undefined) block += `\r\n${MSG_ID_HEADER}: ${msgId}`;
    for (const name of names) {
      const value = incoming[name];
      if (value === undefined || value === "") continue;
      if (typeof value === "string") block += `\r\n${name}: ${value}`;
      else for (const one of value) block += `\r\n${name}: ${one}`;
    }
    // Duck-typed on purpose (see the file comment): only encode() is ever called.
    return new EncodedHeaders(Buffer.from(`${block}\r\n\r\n`, "latin1")) as unknown as MsgHdrs;
  };
}

/**
 * An HTTP header value as the text its bytes spell in UTF-8, for a MsgHdrs
 * (which encodes as UTF-8). Bytes that are not UTF-8 become U+FFFD.
 */
export function headerText(value: string): string {
  // Plain ASCII, the common case, is the same either way.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the ASCII range.
  return /^[\x00-\x7f]*$/.test(value) ? value : Buffer.from(value, "latin1").toString("utf8");
}
