/** Shared by the cutover tests: a route table and small HTTP/poll helpers. */
import { writeRoutes } from "./stack.js";

export const TOKEN = "cutover-test-token";

const ROUTES = `  - name: users.get
    method: GET
    path: /v1/regions/:region/users/:id
    subject: svc.users.{region}.get
    request: users.v1.GetUserRequest
    response: users.v1.User
    legacy: users
    cutover: { nats: 10, shadow: 0 }
  - name: users.create
    method: POST
    path: /v1/regions/:region/users
    subject: svc.users.{region}.create
    request: users.v1.CreateUserRequest
    response: users.v1.User
    body: user
    legacy: users
    cutover: { nats: 0, shadow: 0 }
  - name: orders.get
    method: GET
    path: /v1/orders/:id
    subject: svc.orders.get
    request: orders.v1.GetOrderRequest
    response: orders.v1.Order
    cutover: { nats: 100, shadow: 0 }
`;

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
  init: { method?: string; body?: string; token?: string | null; type?: string } = {},
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
