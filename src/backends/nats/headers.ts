/**
 * The headers of a request to a worker (design.md, "Wire conventions on NATS"),
 * written straight into their wire form. nats.js's publish only calls `encode()`
 * on the headers it is given; building a MsgHdrs map per request and having it
 * serialised again cost more than the whole protobuf encoding.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { MsgHdrs } from "@nats-io/transport-node";

export const ROUTE_HEADER = "Turnout-Route";
export const REQUEST_ID_HEADER = "X-Request-Id";
/** Marks a mirrored request: a worker may skip side effects it must not repeat. */
export const SHADOW_HEADER = "Turnout-Shadow";

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
) => MsgHdrs;

/**
 * Compiles, once per route, the builder of its request headers: `Turnout-Route`,
 * `X-Request-Id`, `traceparent`/`tracestate` when present and the HTTP headers
 * the route passes on (lower-case names; a repeated header keeps every value),
 * and `Turnout-Shadow: 1` on a mirrored request.
 * Values cannot hold CR or LF: Node's HTTP parser refuses them, and request ids
 * are checked before they get here.
 */
export function compileRequestHeaders(
  routeName: string,
  forwarded: readonly string[],
): RequestHeaders {
  const prefix = `NATS/1.0\r\n${ROUTE_HEADER}: ${routeName}\r\n${REQUEST_ID_HEADER}: `;
  const names = ["traceparent", "tracestate", ...forwarded];
  return (requestId, incoming, shadow = false) => {
    let block = prefix + requestId;
    if (shadow) block += `\r\n${SHADOW_HEADER}: 1`;
    for (const name of names) {
      const value = incoming[name];
      if (value === undefined || value === "") continue;
      if (typeof value === "string") block += `\r\n${name}: ${value.trim()}`;
      else for (const one of value) block += `\r\n${name}: ${one.trim()}`;
    }
    // Duck-typed on purpose (see the file comment): only encode() is ever called.
    return new EncodedHeaders(Buffer.from(`${block}\r\n\r\n`)) as unknown as MsgHdrs;
  };
}
