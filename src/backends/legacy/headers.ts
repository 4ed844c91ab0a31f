/**
 * Header rules of the legacy proxy (RFC 9110 section 7.6.1): hop-by-hop headers
 * describe one connection, so they never cross the gateway in either direction;
 * everything else goes through unchanged.
 */
import type { IncomingHttpHeaders } from "node:http";

/** Headers as undici returns them and as Fastify's `reply.headers()` takes them. */
export type HeaderMap = Record<string, string | string[]>;

/** The request side of a forward: what the client sent, as the gateway received it. */
export interface ForwardedFrom {
  readonly headers: IncomingHttpHeaders;
  /** The peer's address (`req.socket.remoteAddress`, not `req.ip`): appended to X-Forwarded-For. */
  readonly remoteAddress: string | undefined;
  /** Scheme the client used (`req.protocol`), sent as X-Forwarded-Proto. */
  readonly protocol: string;
  /** Host the client asked for (`req.host`), sent as X-Forwarded-Host. */
  readonly host: string | undefined;
}

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  // Not standard, but old clients send it in place of Connection.
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/**
 * Request headers never forwarded besides the hop-by-hop ones: the gateway's own
 * switches (the token is the admin secret); `expect`, which Node already answered
 * and undici refuses; `content-length` and `host`, which undici and we set anew.
 */
const NOT_FORWARDED = new Set([
  "turnout-backend",
  "turnout-token",
  "expect",
  "content-length",
  "host",
]);

/** The headers to send upstream: the client's, minus the above, plus Host and X-Forwarded-*. */
export function requestHeaders(from: ForwardedFrom, upstreamHost: string): HeaderMap {
  const headers = endToEnd(from.headers, NOT_FORWARDED);
  headers.host = upstreamHost;
  const chain = joined(headers["x-forwarded-for"]);
  if (from.remoteAddress !== undefined) {
    headers["x-forwarded-for"] = chain ? `${chain}, ${from.remoteAddress}` : from.remoteAddress;
  }
  // Set, not appended: Fastify's req.protocol/req.host already honour a trusted proxy's values.
  headers["x-forwarded-proto"] = from.protocol;
  if (from.host !== undefined) headers["x-forwarded-host"] = from.host;
  return headers;
}

/**
 * The upstream's response headers, minus the hop-by-hop ones, with
 * Content-Length last. Node re-encodes a Content-Disposition that comes after
 * a non-zero Content-Length (nodejs/node#46528): undici hands on header bytes
 * as latin1 text, which Node would then read as UTF-8, so `naïve` in UTF-8
 * (c3 af) would reach the client as one byte (ef). Placed before Content-Length,
 * every header's bytes go out as they came.
 */
export function responseHeaders(headers: Record<string, string | string[] | undefined>): HeaderMap {
  return endToEnd(headers, undefined, "content-length");
}

function endToEnd(
  headers: Record<string, string | string[] | undefined>,
  alsoDropped: ReadonlySet<string> | undefined,
  last?: string,
): HeaderMap {
  const named = connectionTokens(headers.connection);
  const kept: HeaderMap = {};
  let lastValue: string | string[] | undefined;
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || alsoDropped?.has(name)) continue;
    if (named?.has(name)) continue;
    if (name === last) lastValue = value;
    else kept[name] = value;
  }
  if (last !== undefined && lastValue !== undefined) kept[last] = lastValue;
  return kept;
}

/** Header names listed in Connection are hop-by-hop too (RFC 9110 section 7.6.1). */
function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  const text = joined(value);
  if (text === undefined) return undefined;
  const names = text.split(",").map((token) => token.trim().toLowerCase());
  return new Set(names.filter((name) => name !== ""));
}

function joined(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(", ") : value;
}

/**
 * A Content-Type that Fastify's `reply.send()` keeps on a Buffer body: one
 * value, `type/subtype` in tokens, then the end or `;` and parameters (the rule
 * of its lib/content-type.js, whitespace around them included). Any other value
 * (`json`, `*`, empty, `application/ json`, two header lines as an array) it
 * would replace with application/octet-stream; a stream's it leaves as set.
 */
const KEPT_CONTENT_TYPE = /^\s*[\w!#$%&'*+.^`|~-]+\/[\w!#$%&'*+.^`|~-]+\s*(?:;|$)/;

/** Whether Fastify sends this Content-Type as it is with a Buffer (see KEPT_CONTENT_TYPE). */
export function contentTypeKept(value: string | string[] | undefined): boolean {
  return typeof value === "string" && KEPT_CONTENT_TYPE.test(value);
}
