/**
 * The legacy backend: one keep-alive undici Pool per upstream origin, shared by
 * every route whose `legacy` base URL has that origin, so sequential requests
 * reuse warm connections. Shadow mirrors go through a second, smaller pool per
 * origin: up to 256 of them may be in flight, and in the clients' pool they
 * would take the sockets a client request then queues (or times out) behind.
 * The gateway calls `forward`, `mirror` and, for the drain, `close`.
 */
import type { Readable } from "node:stream";
import { Pool } from "undici";
import type { RouteConfig } from "../../config/types.js";
import { TurnoutError } from "../../errors.js";
import {
  type BufferOptions,
  CLIENT_STALL_MS,
  type ForwardOptions,
  forwardTo,
  type LegacyAnswer,
  type LegacyRequest,
  type RelayOptions,
  type Target,
} from "./forward.js";

/** What a forward reads of a route. */
export type LegacyRoute = Pick<RouteConfig, "name" | "legacy" | "timeoutMs">;

export interface LegacyPoolOptions {
  /** Sockets per origin (default 64): the cap on requests in flight to one upstream. */
  readonly connections?: number;
  /**
   * Sockets per origin for shadow mirrors (default 16), a pool apart: a slow
   * mirror waits for one of these, never for a client's.
   */
  readonly mirrorConnections?: number;
  /** TCP (and TLS) handshake limit in ms (default 5000); the route timeout still applies. */
  readonly connectTimeoutMs?: number;
  /**
   * Idle time before a kept-alive socket is closed, in ms (default 4000, below
   * Node's 5 s server default so the upstream never closes a socket we reuse).
   */
  readonly keepAliveTimeoutMs?: number;
  /** How long a streamed answer may stop moving before it is cut (default CLIENT_STALL_MS). */
  readonly stallMs?: number;
}

export class LegacyUpstreams {
  readonly #clients: Pools;
  /** Its pools are made on a route's first mirror: most upstreams are never mirrored to. */
  readonly #mirrors: Pools;
  readonly #stallMs: number;
  #closing: Promise<void> | undefined;

  constructor(routes: readonly Pick<RouteConfig, "legacy">[], options: LegacyPoolOptions = {}) {
    this.#stallMs = options.stallMs ?? CLIENT_STALL_MS;
    const clients = poolOptions(options);
    this.#clients = new Pools(clients);
    this.#mirrors = new Pools({ ...clients, connections: mirrorConnections(options) });
    for (const route of routes) {
      if (route.legacy !== undefined) this.#clients.target(route.legacy);
    }
  }

  /** The origins with a pool, e.g. `http://users.internal:8080`. */
  get origins(): string[] {
    return this.#clients.origins;
  }

  /** Sends the client's request to the route's upstream; rejects with a coded TurnoutError. */
  forward(
    route: LegacyRoute,
    request: LegacyRequest,
    options: RelayOptions,
  ): Promise<LegacyAnswer<Readable | Buffer>>;
  forward(
    route: LegacyRoute,
    request: LegacyRequest,
    options: BufferOptions,
  ): Promise<LegacyAnswer<Buffer>>;
  async forward(
    route: LegacyRoute,
    request: LegacyRequest,
    options: ForwardOptions,
  ): Promise<LegacyAnswer<Readable | Buffer>> {
    const target = this.#open(this.#clients, route);
    return forwardTo(target, request, route.timeoutMs, options, this.#stallMs);
  }

  /**
   * A shadow mirror of the client's request, through the mirror pool: it
   * queues behind other mirrors only (the route timeout covers that wait),
   * never holds a socket a client's request could use.
   */
  async mirror(
    route: LegacyRoute,
    request: LegacyRequest,
    options: BufferOptions,
  ): Promise<LegacyAnswer<Buffer>> {
    const target = this.#open(this.#mirrors, route);
    // A buffered forward always answers a Buffer.
    return (await forwardTo(target, request, route.timeoutMs, options)) as LegacyAnswer<Buffer>;
  }

  /**
   * Whether a mirror to the route's upstream would be sent at once. With every
   * mirror socket busy it could only queue, holding its in-flight slot, and
   * would then time out as an `error` the upstream did not cause.
   */
  hasFreeMirrorSocket(route: LegacyRoute): boolean {
    if (route.legacy === undefined) return false;
    const { pool } = this.#mirrors.target(route.legacy);
    return pool.stats.size < (this.#mirrors.options.connections ?? 1);
  }

  /** Graceful: takes no new requests and resolves once those in flight are done. Idempotent. */
  close(): Promise<void> {
    // undici rejects a second close() of a pool, and a drain may call this twice.
    this.#closing ??= Promise.all([this.#clients.close(), this.#mirrors.close()]).then(
      () => undefined,
    );
    return this.#closing;
  }

  /** The route's target in `pools`; throws when there is none or the upstreams are closing. */
  #open(pools: Pools, route: LegacyRoute): Target {
    if (route.legacy === undefined) {
      throw new TurnoutError("TURNOUT_ERR_INTERNAL", `route ${route.name} has no legacy upstream`);
    }
    if (this.#closing !== undefined) {
      throw new TurnoutError(
        "TURNOUT_ERR_DRAINING",
        "the legacy upstreams are closed for the drain",
      );
    }
    return pools.target(route.legacy);
  }
}

/** One Pool per origin, with the same options, and the targets (base URLs) using them. */
class Pools {
  readonly #pools = new Map<string, Pool>();
  readonly #targets = new Map<string, Target>();

  constructor(readonly options: Pool.Options) {}

  get origins(): string[] {
    return [...this.#pools.keys()];
  }

  /** Known at start from the routes; created on first use for a base URL added later. */
  target(base: string): Target {
    let target = this.#targets.get(base);
    if (target === undefined) {
      const url = new URL(base);
      const prefix = url.pathname.replace(/\/+$/, "");
      target = { pool: this.#pool(url.origin), prefix, host: url.host };
      this.#targets.set(base, target);
    }
    return target;
  }

  close(): Promise<void> {
    return Promise.all([...this.#pools.values()].map((pool) => pool.close())).then(() => undefined);
  }

  #pool(origin: string): Pool {
    let pool = this.#pools.get(origin);
    if (pool === undefined) {
      pool = new Pool(origin, this.options);
      this.#pools.set(origin, pool);
    }
    return pool;
  }
}

/** Never more than the clients' pool: mirrors must not get the larger share of an upstream. */
function mirrorConnections(options: LegacyPoolOptions): number {
  const clients = options.connections ?? 64;
  const wanted = positiveInteger("mirrorConnections", options.mirrorConnections ?? 16);
  return Math.min(wanted, clients);
}

function poolOptions(options: LegacyPoolOptions): Pool.Options {
  const connections = positiveInteger("connections", options.connections ?? 64);
  const connectTimeout = positiveInteger("connectTimeoutMs", options.connectTimeoutMs ?? 5000);
  const keepAliveTimeout = positiveInteger(
    "keepAliveTimeoutMs",
    options.keepAliveTimeoutMs ?? 4000,
  );
  // pipelining 1: a slow answer never holds up the next request behind it on the socket.
  return { connections, pipelining: 1, connect: { timeout: connectTimeout }, keepAliveTimeout };
}

function positiveInteger(name: string, value: number): number {
  if (Number.isInteger(value) && value > 0) return value;
  throw new RangeError(`LegacyUpstreams option ${name} must be a positive integer, got ${value}`);
}
