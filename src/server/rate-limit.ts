/**
 * Per-route rate limits (`rateLimit: { max, per, key }` in routes.yaml) with
 * @fastify/rate-limit, registered with `global: false` so only routes that set
 * one are limited. A request over the limit is answered 429
 * TURNOUT_ERR_RATE_LIMITED as problem+json by the gateway's error handler, with
 * `Retry-After` (seconds), and counted in `turnout_rate_limited_total{route}`.
 *
 * Why a hook rather than the plugin's `config.rateLimit`: the plugin reads
 * `config.rateLimit` from an `onRoute` hook that exists only once the plugin has
 * loaded, but `buildGateway` declares its routes synchronously, before Fastify
 * loads any plugin, so `config.rateLimit` would be silently ignored. Each limited
 * route instead gets an `onRequest` hook whose limiter is made with the plugin's
 * `app.rateLimit()` when the app becomes ready (before the first request). The
 * options carry no `config` key, so spreading them never replaces the route's
 * own `config` (its `routeName`).
 */
import { isIPv6 } from "node:net";
import fastifyRateLimit, {
  type RateLimitOptions as PluginRateLimitOptions,
} from "@fastify/rate-limit";
import type {
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  onRequestAsyncHookHandler,
} from "fastify";
import type { RateLimitOptions, RouteConfig } from "../config/types.js";
import { TurnoutError } from "../errors.js";
import type { GatewayMetrics } from "../observability/metrics.js";
import { unmappedIp } from "../routing/sticky.js";

/** What `registerRoute` spreads into a route's options; empty for a route without a limit. */
export interface RateLimitRouteOptions {
  onRequest?: onRequestAsyncHookHandler;
}

/** Distinct keys remembered per route; the least recently seen is forgotten beyond it. */
const KEYS_PER_ROUTE = 10_000;

interface PendingLimiter {
  readonly options: PluginRateLimitOptions;
  handler: ((req: FastifyRequest, reply: FastifyReply) => Promise<void>) | undefined;
}

const NO_HEADERS_WHEN_SERVED = {
  "x-ratelimit-limit": false,
  "x-ratelimit-remaining": false,
  "x-ratelimit-reset": false,
} as const;

/** The limiters of one app, created once the plugin has loaded. */
const pendingByApp = new WeakMap<FastifyInstance, PendingLimiter[]>();

/**
 * The route options that rate-limit `route` on `app`, or `{}` when the route has
 * no `rateLimit`. The first limited route of an app registers the plugin there.
 */
export function rateLimitRouteOptions(
  app: FastifyInstance,
  route: RouteConfig,
  metrics: GatewayMetrics,
): RateLimitRouteOptions {
  const limit = route.rateLimit;
  if (limit === undefined) return {};
  const limited = metrics.rateLimited.cell(route.name);
  const options: PluginRateLimitOptions = {
    max: limit.max,
    timeWindow: limit.perMs,
    keyGenerator: keyGenerator(limit),
    cache: KEYS_PER_ROUTE,
    onExceeded: () => limited.inc(),
    // In whole seconds, as the Retry-After header says (the plugin's `after` rounds 90 s up to "2 minutes").
    errorResponseBuilder: (_req, ctx) =>
      rateLimitedError(route.name, limit, Math.ceil(ctx.ttl / 1000)),
  };
  const pending: PendingLimiter = { options, handler: undefined };
  pendersOf(app).push(pending);
  const onRequest: onRequestAsyncHookHandler = (req, reply) => {
    // Set in onReady, which Fastify runs before it accepts any request.
    const handler = pending.handler;
    if (handler === undefined) return Promise.reject(notReady(route.name));
    return handler(req, reply);
  };
  return { onRequest };
}

function pendersOf(app: FastifyInstance): PendingLimiter[] {
  let pending = pendingByApp.get(app);
  if (pending !== undefined) return pending;
  pending = [];
  pendingByApp.set(app, pending);
  // Only the 429 (the gateway's own answer) says what the limit is: on an
  // answer that is served, the plugin's x-ratelimit-* headers would tell a
  // NATS-served answer from legacy's, or mix with legacy's own of that name.
  app.register(fastifyRateLimit, { global: false, addHeadersOnExceeding: NO_HEADERS_WHEN_SERVED });
  const all = pending;
  app.addHook("onReady", function makeLimiters(done) {
    for (const limiter of all) {
      limiter.handler = app.rateLimit(limiter.options) as (
        req: FastifyRequest,
        reply: FastifyReply,
      ) => Promise<void>;
    }
    done();
  });
  return pending;
}

/**
 * `ip`: the client's address (`req.ip`: the socket's, or the client a trusted proxy names; see --trust-proxy).
 * `header:<name>`: the header's value; a request without it falls back to its IP,
 * in a separate key space so that no header value can pose as an address.
 */
function keyGenerator(limit: RateLimitOptions): (req: FastifyRequest) => string {
  if (!limit.key.startsWith("header:")) return addressKey;
  const name = limit.key.slice("header:".length).toLowerCase();
  return (req) => {
    const value = req.headers[name];
    const text = Array.isArray(value) ? value.join(",") : value;
    return text === undefined || text === "" ? addressKey(req) : `h:${text}`;
  };
}

/**
 * An IPv6 client is its /64 (as the plugin's own default key has it): one
 * client usually holds a whole /64, and would otherwise get a budget per
 * address, and push every other client's count out of the key cache.
 */
function addressKey(req: FastifyRequest): string {
  const ip = req.ip ?? "";
  if (!isIPv6(ip)) return `ip:${ip}`;
  let key = ipv6Keys.get(ip);
  if (key === undefined) {
    if (ipv6Keys.size >= KEYS_PER_ROUTE) ipv6Keys.clear();
    key = `ip:${ipv6Prefix(ip)}`;
    ipv6Keys.set(ip, key);
  }
  return key;
}

/** IPv6 address -> key, as a client sends many requests from one address. */
const ipv6Keys = new Map<string, string>();

/**
 * The /64 an IPv6 address is in (`2001:db8:1:2::/64`); an IPv4-mapped one is
 * its IPv4 address. By hand: the plugin's normalizeIP parses the address
 * twice, about 15 µs a request.
 */
export function ipv6Prefix(ip: string): string {
  const zone = ip.indexOf("%");
  const address = (zone === -1 ? ip : ip.slice(0, zone)).toLowerCase();
  const v4 = unmappedIp(address);
  if (v4 !== address) return v4;
  const [head = "", tail] = address.split("::");
  const front = head === "" ? [] : head.split(":");
  const back = tail === undefined || tail === "" ? [] : tail.split(":");
  // An IPv4 tail (`::1.2.3.4`) stands for two groups.
  const width = (groups: string[]) => groups.reduce((n, g) => n + (g.includes(".") ? 2 : 1), 0);
  const zeros = tail === undefined ? 0 : 8 - width(front) - width(back);
  const groups = [...front, ...Array<string>(zeros).fill("0"), ...back].slice(0, 4);
  return `${groups.map((group) => Number.parseInt(group, 16).toString(16)).join(":")}::/64`;
}

function rateLimitedError(route: string, limit: RateLimitOptions, afterS: number): TurnoutError {
  return new TurnoutError(
    "TURNOUT_ERR_RATE_LIMITED",
    `route ${route} allows ${limit.max} request(s) per ${formatWindow(limit.perMs)} for each ${keyLabel(limit.key)} on each gateway process; retry in ${afterS} s`,
  );
}

function keyLabel(key: string): string {
  return key === "ip" ? "client address" : `value of ${key.slice("header:".length)}`;
}

function formatWindow(ms: number): string {
  if (ms % 1000 !== 0) return `${ms}ms`;
  return ms === 1000 ? "second" : `${ms / 1000}s`;
}

function notReady(route: string): TurnoutError {
  return new TurnoutError(
    "TURNOUT_ERR_INTERNAL",
    `rate limiter of route ${route} used before the gateway was ready`,
  );
}
