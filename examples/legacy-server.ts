/**
 * The example legacy HTTP/JSON services: what the company ran before Turnout, and
 * what routes.yaml's `legacy:` upstreams point at. Plain node:http, no framework:
 *
 *   users  (default :8081)  GET  /v1/regions/:region/users/:id   (?fields=a,b)
 *                           GET  /v1/regions/:region/users       (?page_size=&page_token=
 *                                                                  &tiers=&near.city=...)
 *                           POST /v1/regions/:region/users       201 + Location
 *   orders (default :8082)  GET  /v1/orders/:id
 *                           POST /v1/orders                      201 + Location
 *
 * The rules are the NATS worker's (both run an ExampleStore from data.ts, each its
 * own copy of the seed data); the JSON is printed by hand (legacy-print.ts) exactly
 * as the gateway prints the worker's replies for these routes, so that a shadow
 * comparison between the two finds nothing, except for the one deliberate
 * mismatch below.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { ExampleError, ExampleStore, type ExampleUser, userFieldMask } from "./data.js";
import {
  orderJson,
  ordersErrorJson,
  userJson,
  usersErrorJson,
  usersPageJson,
} from "./legacy-print.js";
import {
  parseBody,
  readFieldMask,
  readListQuery,
  readOrderInput,
  readUserInput,
} from "./legacy-read.js";

/**
 * DELIBERATE MISMATCH FOR THE DEMO. The legacy users service prints the email of
 * user u-1002 (eu-west) the way the old sign-up form stored it, with a capital
 * first letter ("Grace@example.com"), on GET /v1/regions/eu-west/users/u-1002 only;
 * the NATS worker prints it as the seed data has it ("grace@example.com"). With
 * `shadow` above 0 on users.get, the gateway reports this one difference at
 * `$.email` (GET /admin/routes/users.get/mismatches), so a newcomer sees what a
 * shadow mismatch looks like. Every other answer of the two sides is the same.
 */
export const DEMO_MISMATCH_USER = { region: "eu-west", id: "u-1002" } as const;

function shownEmail(user: ExampleUser): string | undefined {
  if (user.region !== DEMO_MISMATCH_USER.region || user.id !== DEMO_MISMATCH_USER.id) {
    return undefined;
  }
  return user.email.charAt(0).toUpperCase() + user.email.slice(1);
}

export interface LegacyOptions {
  /** Port of the users service; 0 picks a free one. Default 8081. */
  readonly usersPort?: number;
  /** Port of the orders service; 0 picks a free one. Default 8082. */
  readonly ordersPort?: number;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** The clock for created users and orders (tests pin it). */
  readonly now?: () => Date;
  /** Largest request body accepted, in bytes; past it a 413. Default 1 MiB, as routes.yaml. */
  readonly bodyLimit?: number;
  /** Called with every unexpected error (a 500); default: printed to stderr. */
  readonly onError?: (error: unknown) => void;
}

export interface Legacy {
  /** e.g. http://127.0.0.1:8081 */
  readonly usersUrl: string;
  readonly ordersUrl: string;
  readonly usersPort: number;
  readonly ordersPort: number;
  /** Stops accepting, lets requests in progress finish, closes idle connections. */
  close(): Promise<void>;
}

const JSON_TYPE = "application/json; charset=utf-8";
const CLOSE_GRACE_MS = 5_000;

interface Request {
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** The parsed JSON body; undefined when there was none. */
  readonly body: unknown;
}

interface Reply {
  readonly status: number;
  readonly body: string;
  readonly location?: string;
}

interface Route {
  readonly method: "GET" | "POST";
  /** Segments; ":name" binds a parameter. */
  readonly segments: readonly string[];
  readonly handle: (request: Request) => Reply;
}

interface Service {
  readonly name: string;
  readonly routes: readonly Route[];
  /** The service's own error body. */
  readonly errorBody: (error: ExampleError) => string;
}

function route(method: Route["method"], path: string, handle: Route["handle"]): Route {
  return { method, segments: path.split("/").slice(1), handle };
}

function usersService(store: ExampleStore): Service {
  const base = "/v1/regions/:region/users";
  return {
    name: "users",
    errorBody: usersErrorJson,
    routes: [
      route("GET", `${base}/:id`, ({ params, query }) => {
        const user = store.getUser(params.region!, params.id!);
        const only = userFieldMask(readFieldMask(query));
        return { status: 200, body: userJson(user, { only, email: shownEmail(user) }) };
      }),
      route("GET", base, ({ params, query }) => ({
        status: 200,
        body: usersPageJson(store.listUsers(params.region!, readListQuery(query))),
      })),
      route("POST", base, ({ params, body }) => {
        const user = store.createUser(params.region!, readUserInput(body));
        return {
          status: 201,
          body: userJson(user),
          location: `/v1/regions/${encodeURIComponent(user.region)}/users/${encodeURIComponent(user.id)}`,
        };
      }),
    ],
  };
}

function ordersService(store: ExampleStore): Service {
  return {
    name: "orders",
    errorBody: ordersErrorJson,
    routes: [
      route("GET", "/v1/orders/:id", ({ params }) => ({
        status: 200,
        body: orderJson(store.getOrder(params.id!)),
      })),
      route("POST", "/v1/orders", ({ body }) => {
        const order = store.createOrder(readOrderInput(body));
        return {
          status: 201,
          body: orderJson(order),
          location: `/v1/orders/${encodeURIComponent(order.id)}`,
        };
      }),
    ],
  };
}

/** The route's parameters if `segments` is its path, else undefined. */
function match(route: Route, segments: readonly string[]): Record<string, string> | undefined {
  if (route.segments.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const pattern = route.segments[i]!;
    const segment = segments[i]!;
    if (pattern.startsWith(":")) {
      if (segment === "") return undefined;
      params[pattern.slice(1)] = decodeURIComponent(segment);
    } else if (pattern !== segment) {
      return undefined;
    }
  }
  return params;
}

class TooLarge extends Error {}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new TooLarge());
        req.resume(); // drain the rest, answer 413
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

async function answer(
  service: Service,
  req: IncomingMessage,
  bodyLimit: number,
): Promise<Reply & { allow?: string }> {
  const url = new URL(req.url ?? "/", "http://legacy");
  const method = req.method ?? "GET";
  let segments: string[];
  try {
    segments = url.pathname.split("/").slice(1);
    segments.forEach(decodeURIComponent); // a malformed escape is a 400, not a 500
  } catch {
    throw new ExampleError(400, "invalid_argument", `malformed path ${url.pathname}`);
  }
  const matching = service.routes
    .map((r) => ({ route: r, params: match(r, segments) }))
    .filter((m) => m.params !== undefined);
  const found = matching.find((m) => m.route.method === method);
  if (found === undefined) {
    if (matching.length === 0) {
      throw new ExampleError(404, "not_found", `no route ${method} ${url.pathname}`);
    }
    const allow = matching.map((m) => m.route.method).join(", ");
    return {
      status: 405,
      allow,
      body: service.errorBody(
        new ExampleError(405, "method_not_allowed", `${method} is not allowed here (${allow})`),
      ),
    };
  }
  let body: unknown;
  if (method === "POST") {
    let text: string;
    try {
      text = await readBody(req, bodyLimit);
    } catch (error) {
      if (error instanceof TooLarge) {
        throw new ExampleError(413, "payload_too_large", `the body is over ${bodyLimit} bytes`);
      }
      throw error;
    }
    if (text.trim() !== "") {
      const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
      if (type !== "application/json") {
        throw new ExampleError(415, "unsupported_media_type", "send the body as application/json");
      }
      body = parseBody(text);
    }
  }
  return found.route.handle({ params: found.params!, query: url.searchParams, body });
}

function listener(
  service: Service,
  bodyLimit: number,
  onError: (error: unknown) => void,
): (req: IncomingMessage, res: ServerResponse) => void {
  const send = (res: ServerResponse, reply: Reply & { allow?: string }) => {
    res.statusCode = reply.status;
    res.setHeader("content-type", JSON_TYPE);
    res.setHeader("content-length", Buffer.byteLength(reply.body));
    if (reply.location !== undefined) res.setHeader("location", reply.location);
    if (reply.allow !== undefined) res.setHeader("allow", reply.allow);
    res.end(reply.body);
  };
  return (req, res) => {
    answer(service, req, bodyLimit).then(
      (reply) => send(res, reply),
      (error: unknown) => {
        if (error instanceof ExampleError) {
          send(res, { status: error.status, body: service.errorBody(error) });
          return;
        }
        onError(error);
        const internal = new ExampleError(500, "internal", "internal error");
        send(res, { status: 500, body: service.errorBody(internal) });
      },
    );
  };
}

function listen(server: Server, port: number, host: string, name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const failed = (error: Error) =>
      reject(new Error(`cannot listen on ${host}:${port} (${name}): ${error.message}`));
    server.once("error", failed);
    server.listen({ port, host }, () => {
      server.off("error", failed);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve) => {
    // In-flight requests may finish; past the grace their connections are cut.
    const timer = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}

/** Starts both services on one store; resolves once both listen. */
export async function startLegacy(options: LegacyOptions = {}): Promise<Legacy> {
  const host = options.host ?? "127.0.0.1";
  const bodyLimit = options.bodyLimit ?? 1024 * 1024;
  const onError =
    options.onError ?? ((error: unknown) => console.error("legacy: internal error:", error));
  const store = new ExampleStore(options.now === undefined ? {} : { now: options.now });
  const users = createServer(listener(usersService(store), bodyLimit, onError));
  const orders = createServer(listener(ordersService(store), bodyLimit, onError));
  const close = async () => {
    await Promise.all([closeServer(users), closeServer(orders)]);
  };
  try {
    const [usersPort, ordersPort] = await Promise.all([
      listen(users, options.usersPort ?? 8081, host, "users"),
      listen(orders, options.ordersPort ?? 8082, host, "orders"),
    ]);
    const origin = host.includes(":") ? `http://[${host}]` : `http://${host}`;
    return {
      usersUrl: `${origin}:${usersPort}`,
      ordersUrl: `${origin}:${ordersPort}`,
      usersPort,
      ordersPort,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
