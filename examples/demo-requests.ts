/**
 * The requests the demo suggests (as curl lines in its banner) and, with --smoke,
 * runs itself with fetch: one list, so what is printed is what is tested.
 *
 * Which side served a request is not in its answer: legacy's answers pass through
 * unchanged, and the NATS path prints the same JSON. /metrics tells:
 * turnout_requests_total{route,backend} counts each answer under the side that
 * gave it, and turnout_shadow_total{route,result} each shadow comparison. The
 * smoke run reads both before and after a request to check the side and the
 * comparison result it expects.
 */

/** The admin token the demo gives the gateway (TURNOUT_ADMIN_TOKEN). */
export const DEMO_ADMIN_TOKEN = "demo-token";

type Served = "nats" | "legacy" | "gateway";
type ShadowResult = "match" | "mismatch";

export interface DemoRequest {
  /** What it shows, for the banner. */
  readonly title: string;
  readonly method: "GET" | "POST";
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Sent to the admin listener instead of the public one. */
  readonly admin?: boolean;
  /** JSON body text. */
  readonly body?: string;
  /** The curl line shows only the lines matching this (`| grep -E`); the check sees the whole body. */
  readonly grep?: string;
  readonly expect: number;
  /** A problem with the answer's body, or undefined when it is as it should be. */
  readonly check?: (body: string, contentType: string) => string | undefined;
  /**
   * The side that must answer, per turnout_requests_total{route,backend}; a list
   * when either may (a route its plan is moving: which side depends on the moment).
   */
  readonly served?: { readonly route: string; readonly by: Served | readonly Served[] };
  /** The shadow comparison this request must add to turnout_shadow_total{route,result}. */
  readonly shadow?: { readonly route: string; readonly result: ShadowResult };
  /** Asked again (up to this many times, 300 ms apart) until status and check pass. */
  readonly attempts?: number;
  /** What the smoke line shows of a good answer. */
  readonly summary?: (body: string) => string;
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

/** The deliberate mismatch (examples/legacy-server.ts), as the mismatch log shows it. */
function hasEmailMismatch(body: string): string | undefined {
  const entries = parsed(body)?.mismatches;
  if (!Array.isArray(entries)) return `no mismatches list: ${body.slice(0, 300)}`;
  const found = entries.some((entry: Json) => {
    if (typeof entry.path !== "string" || !entry.path.endsWith("/users/u-1002")) return false;
    const diffs = Array.isArray(entry.diffs) ? (entry.diffs as Json[]) : [];
    return diffs.some(
      (diff) =>
        diff.path === "$.email" &&
        [diff.primary, diff.mirror].includes("grace@example.com") &&
        [diff.primary, diff.mirror].includes("Grace@example.com"),
    );
  });
  return found ? undefined : `no $.email mismatch for u-1002 yet: ${body.slice(0, 300)}`;
}

/** e.g. `1 kept, newest GET /v1/...: $.email changed: nats "a", legacy "A"` (primary first). */
function mismatchSummary(body: string): string {
  const entries = parsed(body)?.mismatches;
  if (!Array.isArray(entries) || entries.length === 0) return "none kept";
  const newest = entries[0] as Json;
  const diffs = Array.isArray(newest.diffs) ? (newest.diffs as Json[]) : [];
  const primary = String(newest.primary);
  const mirror = primary === "nats" ? "legacy" : "nats";
  const shown = diffs
    .map(
      (diff) =>
        `${String(diff.path)} ${String(diff.kind)}: ${primary} ${JSON.stringify(diff.primary)}, ` +
        `${mirror} ${JSON.stringify(diff.mirror)}`,
    )
    .join("; ");
  return `${entries.length} kept, newest ${String(newest.method)} ${String(newest.path)}: ${shown}`;
}

/** GET /admin/routes answers from the live KV state, for every route. */
function allLive(body: string): string | undefined {
  const json = parsed(body);
  if (json?.cutover !== "live")
    return `cutover is ${JSON.stringify(json?.cutover)}, expected "live"`;
  const routes = Array.isArray(json.routes) ? (json.routes as Json[]) : [];
  if (routes.length === 0) return `no routes: ${body.slice(0, 300)}`;
  const notLive = routes.filter((route) => route.source !== "live").map((route) => route.name);
  return notLive.length === 0 ? undefined : `not live: ${notLive.join(", ")}`;
}

/** e.g. `live: users.get 50%, users.list 100%, ...` (the NATS share of each route). */
function liveSummary(body: string): string {
  const routes = parsed(body)?.routes;
  const shares = (Array.isArray(routes) ? (routes as Json[]) : []).map(
    (route) => `${String(route.name)} ${String(route.nats)}%`,
  );
  return `live: ${shares.join(", ")}`;
}

/** e.g. `users.get shadow match 2, mismatch 1`. */
function shadowSummary(body: string): string {
  const results = tally(
    readMetrics(body),
    "turnout_shadow_total",
    { route: "users.get" },
    "result",
  );
  // Every result is exported from the start: the ones still at 0 say nothing here.
  const counts = [...results]
    .filter(([, count]) => count > 0)
    .map(([result, count]) => `${result} ${count}`)
    .join(", ");
  return `users.get shadow: ${counts || "none"}`;
}

const SHADOW_MISMATCH = 'turnout_shadow_total{route="users.get",result="mismatch"}';
const SHADOW_MATCH = 'turnout_shadow_total{route="users.get",result="match"}';
const FORCE_LEGACY = { "turnout-backend": "legacy", "turnout-token": DEMO_ADMIN_TOKEN };

// routes.yaml splits users.get 50/50 on x-user-id: alice's bucket is 1446 (< 5000:
// NATS), bob's 5300 (legacy). The `served` checks below follow from that.
export const DEMO_REQUESTS: readonly DemoRequest[] = [
  {
    title: "a user, as alice: users.get is split 50/50 by x-user-id, alice is on NATS",
    method: "GET",
    path: "/v1/regions/eu-west/users/u-1001",
    headers: { "x-user-id": "alice" },
    expect: 200,
    check: jsonHas({ id: "u-1001", balance_cents: "9007199254740993" }),
    served: { route: "users.get", by: "nats" },
    shadow: { route: "users.get", result: "match" },
  },
  {
    title: "the same user, as bob: bob is on legacy; same JSON, and the shadow copy matches",
    method: "GET",
    path: "/v1/regions/eu-west/users/u-1001",
    headers: { "x-user-id": "bob" },
    expect: 200,
    check: jsonHas({ id: "u-1001", balance_cents: "9007199254740993" }),
    served: { route: "users.get", by: "legacy" },
    shadow: { route: "users.get", result: "match" },
  },
  {
    title: "u-1002: legacy prints her email as Grace@..., NATS as grace@...: a shadow mismatch",
    method: "GET",
    path: "/v1/regions/eu-west/users/u-1002",
    headers: { "x-user-id": "alice" },
    expect: 200,
    check: jsonHas({ id: "u-1002", email: "grace@example.com" }),
    served: { route: "users.get", by: "nats" },
    shadow: { route: "users.get", result: "mismatch" },
  },
  {
    title: `the mismatches kept for users.get, with a JSON diff (admin API, token ${DEMO_ADMIN_TOKEN})`,
    method: "GET",
    path: "/admin/routes/users.get/mismatches",
    headers: { authorization: `Bearer ${DEMO_ADMIN_TOKEN}` },
    admin: true,
    expect: 200,
    check: hasEmailMismatch,
    attempts: 10,
    summary: mismatchSummary,
  },
  {
    title: "force a side (debugging, contract tests): alice served by legacy; needs the token",
    method: "GET",
    path: "/v1/regions/eu-west/users/u-1001",
    headers: { "x-user-id": "alice", ...FORCE_LEGACY },
    expect: 200,
    check: jsonHas({ id: "u-1001" }),
    served: { route: "users.get", by: "legacy" },
  },
  {
    title: "a missing user: 404 with the legacy-shaped error body, from either side",
    method: "GET",
    path: "/v1/regions/eu-west/users/u-404",
    expect: 404,
    check: jsonHas({ error: "not_found", message: "no user u-404 in eu-west" }),
  },
  {
    title: "a list, filtered and paged by query parameters (users.list: 100% NATS)",
    method: "GET",
    path: "/v1/regions/eu-west/users?page_size=1&tiers=TIER_PRO&tiers=TIER_ENTERPRISE",
    expect: 200,
    check: (body) => {
      const json = parsed(body);
      const users = json?.users;
      if (!Array.isArray(users) || users.length !== 1) return `expected 1 user: ${body}`;
      return json?.next_page_token ? undefined : `expected a next_page_token: ${body}`;
    },
    served: { route: "users.list", by: "nats" },
  },
  {
    title: "a bad query parameter: 400 problem+json naming it, answered by the gateway itself",
    method: "GET",
    path: "/v1/regions/eu-west/users?tiers=TIER_GOLD",
    expect: 400,
    check: (body, contentType) => {
      if (!contentType.startsWith("application/problem+json")) return `content-type ${contentType}`;
      return body.includes("tiers") ? undefined : `the problem does not name the field: ${body}`;
    },
    served: { route: "users.list", by: "gateway" },
  },
  {
    title: "create a user: 201 (users.create: writes stay on legacy, nats 0)",
    method: "POST",
    path: "/v1/regions/eu-west/users",
    body: '{"display_name": "Alan Turing", "email": "alan@example.com", "tier": "TIER_PRO"}',
    expect: 201,
    check: jsonHas({ display_name: "Alan Turing", region: "eu-west", tier: "TIER_PRO" }),
    served: { route: "users.create", by: "legacy" },
  },
  {
    title:
      "an order (orders.get: moving to NATS by its plan, either side answers the same; " +
      "lowerCamel names, defaults omitted)",
    method: "GET",
    path: "/v1/orders/o-5001",
    expect: 200,
    check: jsonHas({ id: "o-5001", userId: "u-1001", totalCents: "4987" }),
    served: { route: "orders.get", by: ["legacy", "nats"] },
  },
  {
    title: "place an order: 201 (orders.create: on legacy)",
    method: "POST",
    path: "/v1/orders",
    body: '{"userId": "u-1002", "items": [{"sku": "PEN-BRASS", "quantity": 2, "unitPriceCents": "350"}], "cardToken": "tok_visa_4242", "metadata": {"channel": "demo"}}',
    expect: 201,
    check: jsonHas({ userId: "u-1002", status: "PENDING", totalCents: "700" }),
    served: { route: "orders.create", by: "legacy" },
  },
  {
    title: "who served what (backend=nats|legacy|gateway) and the shadow results, from /metrics",
    method: "GET",
    path: "/metrics",
    admin: true,
    grep: "turnout_(requests|shadow|fallbacks)_total",
    expect: 200,
    check: (body) => {
      const metrics = readMetrics(body);
      if ((metrics.get(SHADOW_MISMATCH) ?? 0) < 1) return `no ${SHADOW_MISMATCH} >= 1`;
      if ((metrics.get(SHADOW_MATCH) ?? 0) < 1) return `no ${SHADOW_MATCH} >= 1`;
      return undefined;
    },
    summary: shadowSummary,
  },
  {
    title: "the live split of every route, from the NATS KV bucket (admin API)",
    method: "GET",
    path: "/admin/routes",
    headers: { authorization: `Bearer ${DEMO_ADMIN_TOKEN}` },
    admin: true,
    expect: 200,
    check: allLive,
    summary: liveSummary,
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

const quote = (text: string) => `'${text.replaceAll("'", "'\\''")}'`;

/** The curl command for a request, ready to paste into a POSIX shell. */
export function curlLine(request: DemoRequest, listeners: Listeners): string {
  const parts = [request.grep === undefined ? "curl -i" : "curl -s"];
  if (request.method !== "GET") parts.push(`-X ${request.method}`);
  for (const [name, value] of Object.entries(request.headers ?? {})) {
    parts.push(`-H ${quote(`${name}: ${value}`)}`);
  }
  if (request.body !== undefined) {
    parts.push("-H 'content-type: application/json'", `-d ${quote(request.body)}`);
  }
  parts.push(quote(urlOf(request, listeners)));
  if (request.grep !== undefined) parts.push(`| grep -E ${quote(request.grep)}`);
  return parts.join(" ");
}

export interface BannerFacts {
  /** One line per route: its cutover as the gateway serves it. */
  readonly cutovers: readonly string[];
  /** The example worker's process id (stop it to see the fallback). */
  readonly workerPid: number | undefined;
  /** Where the example legacy services listen, e.g. http://127.0.0.1:8081. */
  readonly legacy: { readonly users: string; readonly orders: string };
  /** The route table the gateway serves (routes.yaml with the legacy URLs replaced). */
  readonly routesFile: string;
  /** One line per route with a plan, e.g. `orders.get: 0 -> 10 -> ... -> 100% every 10s`. */
  readonly plans: readonly string[];
  /** Whether the background load on PLAN_LOAD's route runs (not in a smoke run). */
  readonly load: boolean;
  /** The demo's nats-server (a free port, not routes.yaml's 4222), for the CLI line. */
  readonly natsUrl: string;
}

export function banner(listeners: Listeners, facts: BannerFacts): string {
  const lines = [
    "",
    "Turnout demo is up on 127.0.0.1: nats-server, the example NATS worker, the example",
    "legacy HTTP services and the gateway between them.",
    `  gateway ${listeners.url}   admin ${listeners.adminUrl}   admin token: ${DEMO_ADMIN_TOKEN}`,
    `  legacy users ${facts.legacy.users}, orders ${facts.legacy.orders}`,
    `  routes: ${facts.routesFile} (routes.yaml, legacy URLs replaced)`,
    ...facts.cutovers.map((line) => `    ${line}`),
    "",
    "The answers do not say which side served them (legacy's pass through unchanged);",
    "turnout_requests_total{route,backend} on /metrics does.",
    "",
    "Try:",
  ];
  for (const request of DEMO_REQUESTS) {
    lines.push(`  # ${request.title}`, `  ${curlLine(request, listeners)}`);
  }
  const pid = facts.workerPid === undefined ? "<worker pid>" : String(facts.workerPid);
  if (facts.plans.length > 0) {
    lines.push(
      "",
      "Automatic progressive cutover: the gateway steps these routes' NATS share up by",
      "itself, one step per window while the NATS side keeps within the plan's gates:",
      ...facts.plans.map((line) => `  ${line}`),
    );
    if (facts.load) {
      lines.push(
        `The demo sends ${PLAN_LOAD.perSecond} requests/s to ${PLAN_LOAD.method} ${PLAN_LOAD.path} ` +
          `(${PLAN_LOAD.route}) so its plan has traffic to judge,`,
        'and prints a "[demo] cutover:" line each time a route\'s live NATS share changes. The history:',
      );
    }
    lines.push(
      `  curl -s -H 'authorization: Bearer ${DEMO_ADMIN_TOKEN}' ` +
        `${quote(`${listeners.adminUrl}/admin/routes/${PLAN_LOAD.route}/cutover/history`)}`,
    );
  }
  lines.push(
    "",
    `Fallback: stop the worker (kill ${pid}) and ask again as alice, or for an order:`,
    "NATS has no responders, legacy serves the request, and /metrics counts it in",
    'turnout_fallbacks_total{route,reason="no_responders"}. The rest keeps running.',
    "",
    "The turnout CLI (the README's Operator's guide) on this demo's NATS, e.g.:",
    `  node dist/src/cli/main.js cutover list --config ${quote(facts.routesFile)} --nats-url ${facts.natsUrl}`,
    "",
    "Ctrl-C stops everything. The gateway's request logs: TURNOUT_LOG_LEVEL=info npm run demo",
    "",
  );
  return lines.join("\n");
}

/** One smoke line per request, e.g. `ok   200 GET /v1/orders/o-5001 -> nats`. */
export interface SmokeResult {
  readonly ok: boolean;
  readonly line: string;
}

/** Prometheus text -> `name{labels}` -> value (labels as printed). */
function readMetrics(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    if (space > 0) values.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return values;
}

/** Sums the samples of `name` whose labels include `labels`, per value of label `by`. */
function tally(
  metrics: Map<string, number>,
  name: string,
  labels: Record<string, string>,
  by: string,
): Map<string, number> {
  const sums = new Map<string, number>();
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
  for (const [series, value] of metrics) {
    if (!series.startsWith(`${name}{`)) continue;
    const labelText = series.slice(name.length);
    if (!wanted.every((pair) => labelText.includes(pair))) continue;
    const key = new RegExp(`${by}="([^"]*)"`).exec(labelText)?.[1] ?? "";
    sums.set(key, (sums.get(key) ?? 0) + value);
  }
  return sums;
}

/** What grew between two tallies, e.g. "nats" (or "nats+legacy"); "" when nothing did. */
function grown(before: Map<string, number>, after: Map<string, number>): string {
  return [...after]
    .filter(([key, value]) => value > (before.get(key) ?? 0))
    .map(([key]) => key)
    .sort()
    .join("+");
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });

/**
 * What a request changed in the metrics. Counters move just after the answer
 * (requests are counted once sent, comparisons once the mirror answered too), so
 * this polls, for at most 3 s.
 */
async function watchMetrics(
  listeners: Listeners,
  request: DemoRequest,
  signal: AbortSignal,
): Promise<{ read(): Promise<{ served?: string; shadow?: string }> } | undefined> {
  const { served, shadow } = request;
  if (served === undefined && shadow === undefined) return undefined;
  const scrape = async () => {
    const response = await fetch(`${listeners.adminUrl}/metrics`, {
      signal: AbortSignal.any([signal, AbortSignal.timeout(5000)]),
    });
    const metrics = readMetrics(await response.text());
    return {
      served:
        served && tally(metrics, "turnout_requests_total", { route: served.route }, "backend"),
      shadow: shadow && tally(metrics, "turnout_shadow_total", { route: shadow.route }, "result"),
    };
  };
  const before = await scrape();
  return {
    async read() {
      const deadline = Date.now() + 3000;
      for (;;) {
        const after = await scrape();
        const changes = {
          served: before.served && after.served && grown(before.served, after.served),
          shadow: before.shadow && after.shadow && grown(before.shadow, after.shadow),
        };
        const seen = (!served || changes.served) && (!shadow || changes.shadow);
        if (seen || Date.now() > deadline || signal.aborted) {
          return {
            ...(served && { served: changes.served || "nothing counted" }),
            ...(shadow && { shadow: changes.shadow || "no comparison counted" }),
          };
        }
        await sleep(100, signal);
      }
    },
  };
}

function labelOf(request: DemoRequest): string {
  const shown = Object.entries(request.headers ?? {})
    .filter(([name]) => name === "x-user-id" || name === "turnout-backend")
    .map(([name, value]) => `${name}: ${value}`);
  return [
    `${request.method} ${request.path}`,
    ...(shown.length > 0 ? [`[${shown.join(", ")}]`] : []),
    ...(request.admin ? ["(admin)"] : []),
  ].join(" ");
}

async function runOne(
  request: DemoRequest,
  listeners: Listeners,
  signal: AbortSignal,
): Promise<SmokeResult> {
  const label = labelOf(request);
  try {
    const watch = await watchMetrics(listeners, request, signal);
    const headers: Record<string, string> = { ...request.headers };
    if (request.body !== undefined) headers["content-type"] = "application/json";
    let status = 0;
    let problem: string | undefined;
    let summary: string | undefined;
    const attempts = request.attempts ?? 1;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (attempt > 1) await sleep(300, signal);
      const response = await fetch(urlOf(request, listeners), {
        method: request.method,
        headers,
        ...(request.body === undefined ? {} : { body: request.body }),
        signal: AbortSignal.any([signal, AbortSignal.timeout(5000)]),
      });
      const body = await response.text();
      status = response.status;
      problem =
        status !== request.expect
          ? `expected ${request.expect}: ${body.slice(0, 300)}`
          : request.check?.(body, response.headers.get("content-type") ?? "");
      if (problem === undefined) {
        summary = request.summary?.(body);
        break;
      }
    }
    const notes: string[] = summary === undefined ? [] : [summary];
    if (attempts > 1 && problem !== undefined) problem += ` (asked ${attempts} times)`;
    const seen = await watch?.read();
    if (request.served && seen?.served !== undefined) {
      notes.push(`served by ${seen.served}`);
      const sides: readonly string[] =
        typeof request.served.by === "string" ? [request.served.by] : request.served.by;
      if (problem === undefined && !sides.includes(seen.served)) {
        problem = `expected to be served by ${sides.join(" or ")}`;
      }
    }
    if (request.shadow && seen?.shadow !== undefined) {
      notes.push(`shadow ${seen.shadow}`);
      if (problem === undefined && seen.shadow !== request.shadow.result) {
        problem = `expected shadow ${request.shadow.result}`;
      }
    }
    const details = notes.length > 0 ? `: ${notes.join(", ")}` : "";
    return {
      ok: problem === undefined,
      line: `${problem === undefined ? "ok  " : "FAIL"} ${status} ${label}${details}${problem === undefined ? "" : ` -- ${problem}`}`,
    };
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    return { ok: false, line: `FAIL --- ${label} -- ${why}` };
  }
}

/** Runs every request once, in order (the mismatch comes before its log is read). */
export async function runSmoke(listeners: Listeners, signal: AbortSignal): Promise<SmokeResult[]> {
  const results: SmokeResult[] = [];
  for (const request of DEMO_REQUESTS) results.push(await runOne(request, listeners, signal));
  return results;
}

// --- the plan's traffic, and watching the live split --------------------------

/** The background load the demo (not the smoke run) sends to the route with a plan. */
export const PLAN_LOAD = {
  route: "orders.get",
  method: "GET",
  path: "/v1/orders/o-5001",
  perSecond: 10,
} as const;

/** At most this many load requests in flight: a stalled gateway is not piled on. */
const LOAD_MAX_IN_FLIGHT = 20;

/**
 * Sends PLAN_LOAD (to the gateway on 127.0.0.1) until `signal` aborts. Answers
 * are read and dropped; failures are counted, and the first one of each kind is
 * handed to `onProblem` (the plan's gates see them in the metrics anyway).
 */
export function startLoad(
  listeners: Listeners,
  signal: AbortSignal,
  onProblem: (line: string) => void,
): void {
  const url = `${listeners.url}${PLAN_LOAD.path}`;
  const seen = new Set<string>();
  let inFlight = 0;
  const report = (kind: string) => {
    if (signal.aborted || seen.has(kind)) return;
    seen.add(kind);
    onProblem(`load: ${PLAN_LOAD.method} ${PLAN_LOAD.path}: ${kind} (said once)`);
  };
  const send = async () => {
    if (signal.aborted || inFlight >= LOAD_MAX_IN_FLIGHT) return;
    inFlight++;
    try {
      const response = await fetch(url, {
        method: PLAN_LOAD.method,
        signal: AbortSignal.any([signal, AbortSignal.timeout(5000)]),
      });
      await response.arrayBuffer();
      if (response.status !== 200) report(`answered ${response.status}`);
    } catch (error) {
      report(error instanceof Error ? error.message : String(error));
    } finally {
      inFlight--;
    }
  };
  const timer = setInterval(() => void send(), 1000 / PLAN_LOAD.perSecond);
  signal.addEventListener("abort", () => clearInterval(timer), { once: true });
}

interface RouteRow {
  readonly name: string;
  readonly nats: number;
  readonly by?: string;
  readonly reason?: string;
}

/** e.g. `cutover: orders.get 10% -> 25% NATS (by plan: plan: step 2/4 ...)`. */
export function cutoverChangeLine(row: RouteRow, before: number): string {
  const why = row.by === undefined ? "" : ` (by ${row.by}${row.reason ? `: ${row.reason}` : ""})`;
  return `cutover: ${row.name} ${before}% -> ${row.nats}% NATS${why}`;
}

/**
 * Polls GET /admin/routes every `everyMs` until `signal` aborts and hands
 * `onLine` one line each time a route's live `nats` share changes (the first
 * answer is the baseline: nothing is said for it).
 */
export function watchCutover(
  listeners: Listeners,
  signal: AbortSignal,
  onLine: (line: string) => void,
  everyMs = 1000,
): void {
  const known = new Map<string, number>();
  let busy = false;
  const poll = async () => {
    if (busy || signal.aborted) return;
    busy = true;
    try {
      const response = await fetch(`${listeners.adminUrl}/admin/routes`, {
        headers: { authorization: `Bearer ${DEMO_ADMIN_TOKEN}` },
        signal: AbortSignal.any([signal, AbortSignal.timeout(2000)]),
      });
      const json = parsed(await response.text());
      if (response.status !== 200 || json?.cutover !== "live" || !Array.isArray(json.routes)) {
        return;
      }
      for (const row of json.routes as RouteRow[]) {
        const before = known.get(row.name);
        known.set(row.name, row.nats);
        if (before !== undefined && before !== row.nats && !signal.aborted) {
          onLine(cutoverChangeLine(row, before));
        }
      }
    } catch {
      // not answering right now (stopping, or busy): the next poll tries again
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void poll(), everyMs);
  void poll();
  signal.addEventListener("abort", () => clearInterval(timer), { once: true });
}
