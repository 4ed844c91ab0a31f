/**
 * The sticky key of a request: the value that pins one client to one side of
 * the split (see split.ts). Compiled once per route into a closure that only
 * reads the request; no regex, no allocation beyond the returned string.
 * An absent or empty value is `undefined`, so such requests get a random
 * bucket instead of all landing in the one bucket of "".
 */
import type { IncomingHttpHeaders } from "node:http";
import type { StickyKey } from "../config/types.js";

export interface StickySource {
  readonly headers: IncomingHttpHeaders;
  readonly query: Readonly<Record<string, string | string[] | undefined>>;
  readonly ip: string;
}

export type StickyKeyOf = (req: StickySource) => string | undefined;

export function compileStickyKey(sticky: StickyKey): StickyKeyOf {
  switch (sticky.kind) {
    case "header": {
      const name = sticky.name.toLowerCase();
      return (req) => nonEmpty(first(req.headers[name]));
    }
    case "cookie": {
      const name = sticky.name;
      return (req) => nonEmpty(cookieValue(req.headers.cookie, name));
    }
    case "query": {
      const name = sticky.name;
      return (req) => nonEmpty(first(req.query[name]));
    }
    case "ip":
      return (req) => nonEmpty(unmappedIp(req.ip));
    case "random":
      return () => undefined;
  }
}

/**
 * An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, what a replica listening on
 * `::` sees) as the IPv4 address a replica listening on 0.0.0.0 sees: one
 * client must hash the same on every replica.
 */
export function unmappedIp(ip: string): string {
  return ip.startsWith("::ffff:") && ip.includes(".") ? ip.slice(7) : ip;
}

function first(value: string | string[] | undefined): string | undefined {
  return typeof value === "string" ? value : value?.[0];
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === "" ? undefined : value;
}

/**
 * One cookie's value from a Cookie header (`a=1; b=2`), or undefined. Finds
 * `name=` at the start or after `;`/whitespace, so `xname=` never matches
 * `name`. The value is taken raw (no URL decoding: it is only hashed), with
 * RFC 6265 surrounding quotes removed.
 */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  const needle = `${name}=`;
  for (let at = header.indexOf(needle); at !== -1; at = header.indexOf(needle, at + 1)) {
    if (at > 0 && !isSeparator(header.charCodeAt(at - 1))) continue;
    const start = at + needle.length;
    let end = header.indexOf(";", start);
    if (end === -1) end = header.length;
    while (end > start && isSpace(header.charCodeAt(end - 1))) end--;
    const quoted = end - start >= 2 && header[start] === '"' && header[end - 1] === '"';
    return quoted ? header.slice(start + 1, end - 1) : header.slice(start, end);
  }
  return undefined;
}

function isSeparator(code: number): boolean {
  return code === 59 /* ; */ || isSpace(code);
}

function isSpace(code: number): boolean {
  return code === 32 || code === 9;
}
