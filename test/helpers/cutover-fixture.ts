/** Shared by the cutover tests: a route table and small HTTP/poll helpers. */
import { ordersGetRoute, usersCreateRoute, usersGetRoute } from "./route-yaml.js";
import { writeRoutes } from "./stack.js";

export const TOKEN = "cutover-test-token";

const ROUTES =
  usersGetRoute({ legacy: "users", cutover: "{ nats: 10, shadow: 0 }" }) +
  usersCreateRoute({ legacy: "users", cutover: "{ nats: 0, shadow: 0 }" }) +
  ordersGetRoute({ cutover: "{ nats: 100, shadow: 0 }" });

/** A route's `cutover:` with a plan that steps every 300 ms on 5 requests: 20 -> 40 -> 60 -> 80. */
export const FAST_PLAN = `
      nats: 20
      plan:
        steps: [40, 60, 80]
        every: 300ms
        gates: { maxErrorRate: 0.1, maxP99: 1s, maxMismatchRate: 1, minRequests: 5 }`;

export function cutoverRoutes(): string {
  return writeRoutes(ROUTES, "legacy:\n  users: http://127.0.0.1:1\n");
}

export interface Answer {
  readonly status: number;
  readonly type: string;
  readonly body: Record<string, unknown>;
}

export async function call(
  url: string,
  init: { method?: string; body?: string | Uint8Array; token?: string | null; type?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {};
  const token = init.token === undefined ? TOKEN : init.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (init.body !== undefined) headers["content-type"] = init.type ?? "application/json";
  const res = await fetch(url, { method: init.method ?? "GET", headers, body: init.body });
  const text = await res.text();
  return {
    status: res.status,
    type: res.headers.get("content-type") ?? "",
    body: text === "" ? {} : (JSON.parse(text) as Record<string, unknown>),
  };
}

/** Polls `check` every 20 ms until it is true or `ms` have passed; answers the last result. */
export async function within(
  ms: number,
  check: () => boolean | Promise<boolean>,
): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}
