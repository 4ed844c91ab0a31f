/** The keys schema v1 allows in each map; anything else is an error, never ignored. */

export const TOP_KEYS = ["version", "protos", "nats", "legacy", "defaults", "routes"] as const;
export const NATS_KEYS = ["servers", "name", "tls", "auth"] as const;
export const TLS_KEYS = ["ca", "cert", "key", "handshakeFirst"] as const;
export const AUTH_KEYS = ["token", "user", "pass", "nkeySeed", "credsFile"] as const;
export const SECRET_KEYS = ["env", "file"] as const;

/** The settings `defaults` holds and every route may override. */
export const TUNABLE_KEYS = ["timeout", "retry", "json", "breaker", "bodyLimit"] as const;
export const RETRY_KEYS = ["attempts", "backoff"] as const;
export const JSON_KEYS = ["names", "int64", "enums", "emitDefaults"] as const;
export const BREAKER_KEYS = ["errorPercent", "volume", "resetAfter"] as const;

export const ROUTE_KEYS = [
  "name",
  "method",
  "path",
  "subject",
  "request",
  "response",
  "error",
  "body",
  "legacy",
  "cutover",
  "mode",
  "idempotent",
  "shadowWrites",
  "rateLimit",
  "compare",
  "headers",
  ...TUNABLE_KEYS,
] as const;
export const CUTOVER_KEYS = ["nats", "shadow", "sticky", "plan"] as const;
export const PLAN_KEYS = ["steps", "every", "gates"] as const;
export const PLAN_GATE_KEYS = ["maxErrorRate", "maxP99", "maxMismatchRate", "minRequests"] as const;
export const RATE_LIMIT_KEYS = ["max", "per", "key"] as const;
export const COMPARE_KEYS = ["ignore"] as const;
