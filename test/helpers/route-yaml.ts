/**
 * The example routes most gateway tests serve, as entries of the `routes:` list
 * for `writeRoutes`. A test passes only the keys its behaviour depends on, so
 * what sets its routes apart stays in the test.
 */

/**
 * Keys added to a route, written after its usual ones in the order given.
 * Values are YAML as it would be written; one starting with a newline is a
 * nested block (e.g. a cutover with a plan).
 */
export interface RouteKeys {
  /** Instead of the route's usual subject, in the same place. */
  readonly subject?: string;
  readonly error?: string;
  readonly headers?: string;
  readonly legacy?: string;
  readonly timeout?: string;
  readonly cutover?: string;
  readonly compare?: string;
  readonly rateLimit?: string;
  readonly bodyLimit?: string;
  readonly json?: string;
  readonly retry?: string;
  readonly breaker?: string;
  readonly mode?: string;
  readonly shadowWrites?: string;
}

interface ExampleRoute {
  readonly name: string;
  readonly method: "GET" | "POST";
  readonly path: string;
  readonly subject: string;
  readonly request: string;
  readonly response: string;
  readonly body?: string;
}

function routeEntry(route: ExampleRoute, keys: RouteKeys): string {
  const { subject = route.subject, ...added } = keys;
  let yaml =
    `  - name: ${route.name}\n` +
    `    method: ${route.method}\n` +
    `    path: ${route.path}\n` +
    `    subject: ${subject}\n` +
    `    request: ${route.request}\n` +
    `    response: ${route.response}\n`;
  if (route.body !== undefined) yaml += `    body: ${route.body}\n`;
  for (const [key, value] of Object.entries(added)) {
    if (value === undefined) continue;
    yaml += value.startsWith("\n") ? `    ${key}:${value}\n` : `    ${key}: ${value}\n`;
  }
  return yaml;
}

export function usersGetRoute(keys: RouteKeys = {}): string {
  return routeEntry(
    {
      name: "users.get",
      method: "GET",
      path: "/v1/regions/:region/users/:id",
      subject: "svc.users.{region}.get",
      request: "users.v1.GetUserRequest",
      response: "users.v1.User",
    },
    keys,
  );
}

/** users.get's twin under /v1/old, served by the `users` legacy upstream only. */
export function usersLegacyRoute(keys: RouteKeys = {}): string {
  return routeEntry(
    {
      name: "users.legacy",
      method: "GET",
      path: "/v1/old/:region/users/:id",
      subject: "svc.users.{region}.get",
      request: "users.v1.GetUserRequest",
      response: "users.v1.User",
    },
    { legacy: "users", cutover: "{ nats: 0, shadow: 0 }", ...keys },
  );
}

export function usersListRoute(keys: RouteKeys = {}): string {
  return routeEntry(
    {
      name: "users.list",
      method: "GET",
      path: "/v1/regions/:region/users",
      subject: "svc.users.{region}.list",
      request: "users.v1.ListUsersRequest",
      response: "users.v1.ListUsersResponse",
    },
    keys,
  );
}

export function usersCreateRoute(keys: RouteKeys = {}): string {
  return routeEntry(
    {
      name: "users.create",
      method: "POST",
      path: "/v1/regions/:region/users",
      subject: "svc.users.{region}.create",
      request: "users.v1.CreateUserRequest",
      response: "users.v1.User",
      body: "user",
    },
    keys,
  );
}

export function ordersGetRoute(keys: RouteKeys = {}): string {
  return routeEntry(
    {
      name: "orders.get",
      method: "GET",
      path: "/v1/orders/:id",
      subject: "svc.orders.get",
      request: "orders.v1.GetOrderRequest",
      response: "orders.v1.Order",
    },
    keys,
  );
}
