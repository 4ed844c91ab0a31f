/**
 * The requests the demo suggests (as curl lines in its banner) and, with --smoke,
 * runs itself with fetch: one list, so what is printed is what is tested.
 */

export interface DemoRequest {
  /** What it shows, for the banner. */
  readonly title: string;
  readonly method: "GET" | "POST";
  readonly path: string;
  /** Sent to the admin listener instead of the public one. */
  readonly admin?: boolean;
  /** JSON body text. */
  readonly body?: string;
  readonly expect: number;
  /** A problem with the answer's body, or undefined when it is as it should be. */
  readonly check?: (body: string, contentType: string) => string | undefined;
}

export interface Listeners {
  readonly url: string;
  readonly adminUrl: string;
}

type Json = Record<string, unknown>;

function parsed(body: string): Json | undefined {
  try {
    const value: unknown = JSON.parse(body);
    return typeof value === "object" && value !== null ? (value as Json) : undefined;
  } catch {
    return undefined;
  }
}

/** Checks that the body is a JSON object with these top-level values. */
function jsonHas(expected: Json): (body: string) => string | undefined {
  return (body) => {
    const json = parsed(body);
    if (json === undefined) return `not a JSON object: ${body.slice(0, 200)}`;
    for (const [key, value] of Object.entries(expected)) {
      if (JSON.stringify(json[key]) !== JSON.stringify(value)) {
        return `${key} is ${JSON.stringify(json[key])}, expected ${JSON.stringify(value)}`;
      }
    }
    return undefined;
  };
}

export const DEMO_REQUESTS: readonly DemoRequest[] = [
  {
    title: "a user (int64 past 2^53 kept exact, snake_case like the legacy service)",
    method: "GET",
    path: "/v1/regions/eu-west/users/u-1001",
    expect: 200,
    check: jsonHas({ id: "u-1001", balance_cents: "9007199254740993" }),
  },
  {
    title: "a missing user: 404 with the legacy-shaped error body",
    method: "GET",
    path: "/v1/regions/eu-west/users/u-404",
    expect: 404,
    check: jsonHas({ error: "not_found", message: "no user u-404 in eu-west" }),
  },
  {
    title: "a list, filtered and paged by query parameters",
    method: "GET",
    path: "/v1/regions/eu-west/users?page_size=1&tiers=TIER_PRO&tiers=TIER_ENTERPRISE",
    expect: 200,
    check: (body) => {
      const json = parsed(body);
      const users = json?.users;
      if (!Array.isArray(users) || users.length !== 1) return `expected 1 user: ${body}`;
      return json?.next_page_token ? undefined : `expected a next_page_token: ${body}`;
    },
  },
  {
    title: "create a user from a JSON body: 201",
    method: "POST",
    path: "/v1/regions/eu-west/users",
    body: '{"display_name": "Alan Turing", "email": "alan@example.com", "tier": "TIER_PRO"}',
    expect: 201,
    check: jsonHas({ display_name: "Alan Turing", region: "eu-west", tier: "TIER_PRO" }),
  },
  {
    title: "a bad field: 400 problem+json naming it, before anything reaches NATS",
    method: "POST",
    path: "/v1/regions/eu-west/users",
    body: '{"display_name": "Bad Tier", "email": "bad@example.com", "tier": "TIER_GOLD"}',
    expect: 400,
    check: (body, contentType) => {
      if (!contentType.startsWith("application/problem+json")) return `content-type ${contentType}`;
      return body.includes("tier") ? undefined : `the problem does not name the field: ${body}`;
    },
  },
  {
    title: "an order (this route prints lowerCamel names and omits defaults)",
    method: "GET",
    path: "/v1/orders/o-5001",
    expect: 200,
    check: jsonHas({ id: "o-5001", userId: "u-1001", totalCents: "4987" }),
  },
  {
    title: "place an order: 201",
    method: "POST",
    path: "/v1/orders",
    body: '{"userId": "u-1002", "items": [{"sku": "PEN-BRASS", "quantity": 2, "unitPriceCents": "350"}], "cardToken": "tok_visa_4242", "metadata": {"channel": "demo"}}',
    expect: 201,
    check: jsonHas({ userId: "u-1002", status: "PENDING", totalCents: "700" }),
  },
  {
    title: "Prometheus metrics (admin listener)",
    method: "GET",
    path: "/metrics",
    admin: true,
    expect: 200,
    check: (body) =>
      body.includes("turnout_requests_total") ? undefined : "no turnout_requests_total",
  },
  {
    title: "readiness (admin listener)",
    method: "GET",
    path: "/readyz",
    admin: true,
    expect: 200,
  },
];

function urlOf(request: DemoRequest, listeners: Listeners): string {
  return `${request.admin ? listeners.adminUrl : listeners.url}${request.path}`;
}

/** The curl command for a request, ready to paste into a POSIX shell. */
export function curlLine(request: DemoRequest, listeners: Listeners): string {
  const quote = (text: string) => `'${text.replaceAll("'", "'\\''")}'`;
  const parts = ["curl -i"];
  if (request.method !== "GET") parts.push(`-X ${request.method}`);
  if (request.body !== undefined) {
    parts.push("-H 'content-type: application/json'", `-d ${quote(request.body)}`);
  }
  parts.push(quote(urlOf(request, listeners)));
  return parts.join(" ");
}

export function banner(listeners: Listeners): string {
  const lines = [
    "",
    "Turnout demo is up: nats-server, the example worker and the gateway, on 127.0.0.1.",
    `  gateway ${listeners.url}   admin ${listeners.adminUrl}   (routes.yaml: every route 100% on NATS)`,
    "",
    "Try:",
  ];
  for (const request of DEMO_REQUESTS) {
    lines.push(`  # ${request.title}`, `  ${curlLine(request, listeners)}`);
  }
  lines.push(
    "",
    "Ctrl-C stops everything. The gateway's request logs: TURNOUT_LOG_LEVEL=info npm run demo",
    "",
  );
  return lines.join("\n");
}

/** One smoke line per request, e.g. `ok   200 GET /v1/orders/o-5001`. */
export interface SmokeResult {
  readonly ok: boolean;
  readonly line: string;
}

/** Runs every request once, in order (the create comes before the list would see it). */
export async function runSmoke(listeners: Listeners, signal: AbortSignal): Promise<SmokeResult[]> {
  const results: SmokeResult[] = [];
  for (const request of DEMO_REQUESTS) {
    const label = `${request.method} ${request.path}${request.admin ? " (admin)" : ""}`;
    try {
      const response = await fetch(urlOf(request, listeners), {
        method: request.method,
        ...(request.body === undefined
          ? {}
          : { body: request.body, headers: { "content-type": "application/json" } }),
        signal: AbortSignal.any([signal, AbortSignal.timeout(5000)]),
      });
      const body = await response.text();
      const contentType = response.headers.get("content-type") ?? "";
      const problem =
        response.status !== request.expect
          ? `expected ${request.expect}: ${body.slice(0, 300)}`
          : request.check?.(body, contentType);
      results.push({
        ok: problem === undefined,
        line: `${problem === undefined ? "ok  " : "FAIL"} ${response.status} ${label}${problem === undefined ? "" : ` -- ${problem}`}`,
      });
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      results.push({ ok: false, line: `FAIL --- ${label} -- ${why}` });
    }
  }
  return results;
}
