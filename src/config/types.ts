/**
 * The validated, frozen shape of routes.yaml (schema v1). `loadConfig` produces it;
 * everything downstream reads only this, never the raw YAML. Durations are in
 * milliseconds, sizes in bytes, percentages as numbers 0-100.
 */

export const HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

/** How the NATS path prints JSON: chosen to reproduce the legacy service's style. */
export interface JsonOptions {
  /** `proto`: field names as in the .proto (snake_case); `camel`: lowerCamel / json_name. */
  readonly names: "proto" | "camel";
  /** 64-bit integers printed as JSON strings (ProtoJSON) or bare numbers. */
  readonly int64: "string" | "number";
  /** Enums printed by name (ProtoJSON) or by number. */
  readonly enums: "name" | "number";
  /** Print implicit-presence fields at their default value (0, "", false, [], {}). */
  readonly emitDefaults: boolean;
}

export interface RetryOptions {
  /** Extra attempts after the first, 0-10; 0 disables retries. */
  readonly attempts: number;
  /** Base of the exponential backoff, in ms (full jitter). */
  readonly backoffMs: number;
}

export interface BreakerOptions {
  readonly errorPercent: number;
  readonly volume: number;
  readonly resetAfterMs: number;
}

export interface RateLimitOptions {
  readonly max: number;
  readonly perMs: number;
  /** `ip` or `header:<name>` (name lower-cased). */
  readonly key: string;
}

/** Where a sticky bucket key comes from; `random` when the route sets none. */
export type StickyKey =
  | { readonly kind: "header" | "cookie" | "query"; readonly name: string }
  | { readonly kind: "ip" }
  | { readonly kind: "random" };

export interface CutoverOptions {
  /** Share served by NATS, 0-100 with two decimals. */
  readonly nats: number;
  /** Share also mirrored to the side that is not serving, 0-100. */
  readonly shadow: number;
  readonly sticky: StickyKey;
  /**
   * Automatic progressive cutover; absent when the route has none. Optional
   * (rather than always present as undefined) so a route without a plan reads
   * exactly as before.
   */
  readonly plan?: CutoverPlan | undefined;
}

/** `cutover.plan`: the NATS share steps up while the gates hold over each window. */
export interface CutoverPlan {
  /** NATS percentages to step through, strictly ascending, each 0-100. */
  readonly steps: readonly number[];
  /** Length of one judged window (and the least time spent on a step), in ms. */
  readonly everyMs: number;
  readonly gates: PlanGates;
}

export interface PlanGates {
  /** Highest share (0-1) of 5xx answers and fallbacks among NATS-routed requests. */
  readonly maxErrorRate: number;
  /** Highest p99 latency of NATS answers, in ms. */
  readonly maxP99Ms: number;
  /** Highest share (0-1) of shadow comparisons that mismatch. */
  readonly maxMismatchRate: number;
  /** Fewer NATS-routed requests than this in a window: hold, never a pass. */
  readonly minRequests: number;
}

export interface RouteConfig {
  readonly name: string;
  readonly method: HttpMethod;
  /** Fastify-style path, e.g. `/v1/users/:id`. */
  readonly path: string;
  /**
   * Names of the `:params` in `path`, in order: plain identifiers, each a whole
   * segment, each naming a scalar-like field of `request` (checked at load).
   */
  readonly pathParams: readonly string[];
  /** Subject template, e.g. `svc.users.{region}.get`. */
  readonly subject: string;
  /** Fully qualified protobuf type names (no leading dot; partial names are refused). */
  readonly request: string;
  readonly response: string;
  readonly error: string | undefined;
  /** `*` binds the whole JSON body to the request; a field name binds it to that field; undefined: no body. */
  readonly body: string | undefined;
  /** Absolute http(s) base URL of the legacy upstream, resolved from `legacy:` names; no trailing slash. */
  readonly legacy: string | undefined;
  readonly cutover: CutoverOptions;
  readonly mode: "request" | "publish";
  readonly idempotent: boolean;
  readonly shadowWrites: boolean;
  readonly timeoutMs: number;
  readonly retry: RetryOptions;
  readonly json: JsonOptions;
  readonly breaker: BreakerOptions;
  readonly bodyLimitBytes: number;
  readonly rateLimit: RateLimitOptions | undefined;
  /** JSON paths left out of the shadow comparison: `$` then `.name`, `.*`, `[n]` or `[*]` steps. */
  readonly compare: { readonly ignore: readonly string[] };
  /** Lower-cased HTTP header names passed to the worker. */
  readonly headers: readonly string[];
}

/** A secret is never inline in the file: it comes from an env var or a file (absolute path). */
export type SecretRef = { readonly env: string } | { readonly file: string };

export interface NatsAuth {
  readonly token?: SecretRef;
  readonly user?: string;
  readonly pass?: SecretRef;
  readonly nkeySeed?: SecretRef;
  /** Absolute path of a .creds file (JWT + nkey seed). */
  readonly credsFile?: string;
}

export interface NatsConfig {
  readonly servers: readonly string[];
  readonly name: string;
  /** Absolute paths; `{}` means TLS with the system CAs. */
  readonly tls:
    | {
        readonly ca?: string;
        readonly cert?: string;
        readonly key?: string;
        /** TLS before the server's INFO: `tls { handshake_first: true }`, or a TLS-terminating proxy. */
        readonly handshakeFirst?: boolean;
      }
    | undefined;
  readonly auth: NatsAuth | undefined;
}

export interface GatewayConfig {
  /** Absolute path of the routes.yaml it was loaded from. */
  readonly file: string;
  /** Absolute paths of the .proto files or folders. */
  readonly protos: readonly string[];
  readonly nats: NatsConfig;
  /** Named legacy upstreams -> absolute base URL (no trailing slash). */
  readonly legacy: Readonly<Record<string, string>>;
  readonly routes: readonly RouteConfig[];
}

/** Canonical ProtoJSON output, used when neither defaults nor the route set `json`. */
export const CANONICAL_JSON: JsonOptions = Object.freeze({
  names: "camel",
  int64: "string",
  enums: "name",
  emitDefaults: false,
});
