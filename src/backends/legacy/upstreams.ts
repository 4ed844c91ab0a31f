/**
 * The legacy backend: one keep-alive undici Pool per upstream origin, shared by
 * every route whose `legacy` base URL has that origin, so sequential requests
 * reuse warm connections. The gateway calls `forward` and, for the drain, `close`.
 */
import type { Readable } from "node:stream";
import { Pool } from "undici";
import type { RouteConfig } from "../../config/types.js";
import { TurnoutError } from "../../errors.js";
import {
  type BufferOptions,
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
  /** TCP (and TLS) handshake limit in ms (default 5000); the route timeout still applies. */
  readonly connectTimeoutMs?: number;
  /**
   * Idle time before a kept-alive socket is closed, in ms (default 4000, below
   * Node's 5 s server default so the upstream never closes a socket we reuse).
   */
  readonly keepAliveTimeoutMs?: number;
}

export class LegacyUpstreams {
  readonly #pools = new Map<string, Pool>();
  readonly #targets = new Map<string, Target>();
  readonly #poolOptions: Pool.Options;
  #closing: Promise<void> | undefined;

  constructor(routes: readonly Pick<RouteConfig, "legacy">[], options: LegacyPoolOptions = {}) {
    this.#poolOptions = poolOptions(options);
    for (const route of routes) {
      if (route.legacy !== undefined) this.#target(route.legacy);
    }
  }

  /** The origins with a pool, e.g. `http://users.internal:8080`. */
  get origins(): string[] {
    return [...this.#pools.keys()];
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
    if (route.legacy === undefined) {
      throw new TurnoutError("TURNOUT_ERR_INTERNAL", `route ${route.name} has no legacy upstream`);
    }
    if (this.#closing !== undefined) {
      throw new TurnoutError(
        "TURNOUT_ERR_DRAINING",
        "the legacy upstreams are closed for the drain",
      );
    }
    return forwardTo(this.#target(route.legacy), request, route.timeoutMs, options);
  }

  /** Graceful: takes no new requests and resolves once those in flight are done. Idempotent. */
  close(): Promise<void> {
    // undici rejects a second close() of a pool, and a drain may call this twice.
    this.#closing ??= Promise.all([...this.#pools.values()].map((pool) => pool.close())).then(
      () => undefined,
    );
    return this.#closing;
  }

  /** Known at start from the routes; created on first use for a base URL added later. */
  #target(base: string): Target {
    let target = this.#targets.get(base);
    if (target === undefined) {
      const url = new URL(base);
      const prefix = url.pathname.replace(/\/+$/, "");
      target = { pool: this.#pool(url.origin), prefix, host: url.host };
      this.#targets.set(base, target);
    }
    return target;
  }

  #pool(origin: string): Pool {
    let pool = this.#pools.get(origin);
    if (pool === undefined) {
      pool = new Pool(origin, this.#poolOptions);
      this.#pools.set(origin, pool);
    }
    return pool;
  }
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
