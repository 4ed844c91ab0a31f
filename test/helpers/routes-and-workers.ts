/**
 * Routes and workers shared by the gateway's end-to-end tests: the example
 * protos, a users worker built with the worker kit, and a raw orders responder
 * that misbehaves on demand (slow, garbage, odd codes).
 */
import {
  connect,
  type Msg,
  type NatsConnection,
  headers as natsHeaders,
} from "@nats-io/transport-node";
import type protobuf from "protobufjs";
import { loadProtos } from "../../src/codec/protos.js";
import { startNatsServer } from "../../src/devtools/nats-server.js";
import {
  ServiceError,
  startWorker,
  type Worker,
  type WorkerOptions,
} from "../../src/worker/index.js";
import { ordersGetRoute, usersCreateRoute, usersGetRoute, usersListRoute } from "./route-yaml.js";
import { PROTO_DIR } from "./stack.js";

export const ROUTES =
  usersGetRoute({ error: "users.v1.Error", headers: "[x-user-id, accept-language]" }) +
  usersListRoute() +
  usersCreateRoute({ bodyLimit: "2KiB" }) +
  ordersGetRoute({
    error: "orders.v1.Error",
    timeout: "300ms",
    json: "{ names: camel, emitDefaults: false }",
  }) +
  `  - name: orders.create
    method: POST
    path: /v1/orders
    subject: svc.orders.create
    request: orders.v1.CreateOrderRequest
    response: orders.v1.Order
    body: order
    json: { names: camel, emitDefaults: false }
  - name: ghost.get
    method: GET
    path: /v1/ghosts/:id
    subject: svc.ghosts.get
    request: orders.v1.GetOrderRequest
    response: orders.v1.Order
    timeout: 1500ms
`;

/** The legacy services' style: snake_case, int64 as strings, enum names, every field. */
export const DEFAULTS = `defaults:
  json: { names: proto, int64: string, enums: name, emitDefaults: true }
`;

export interface SeenRequest {
  subject: string;
  headers: Record<string, string>;
  request: Record<string, unknown>;
}

/** Users worker: echoes what it was asked, remembers every request it saw. */
export function startUsersWorker(
  nc: NatsConnection,
  root: protobuf.Root,
  seen: SeenRequest[],
): Worker[] {
  const remember = (subject: string, request: protobuf.Message, headers: Msg["headers"]) => {
    const flat: Record<string, string> = {};
    for (const key of headers?.keys() ?? [])
      flat[key.toLowerCase()] = headers?.values(key).join(",") ?? "";
    const type = request.$type as protobuf.Type;
    seen.push({
      subject,
      headers: flat,
      request: type.toObject(request, { longs: String, enums: String }),
    });
  };
  const userType = root.lookupType("users.v1.User");
  const get = startWorker({
    nc,
    root,
    subject: "svc.users.*.get",
    requestType: "users.v1.GetUserRequest",
    responseType: "users.v1.User",
    errorType: "users.v1.Error",
    handle(req: protobuf.Message & { id: string; region: string }, ctx) {
      remember(ctx.subject, req, ctx.headers);
      if (req.id === "missing") {
        throw new ServiceError(404, "user not found", {
          error: "not_found",
          message: `no user ${req.id}`,
        });
      }
      if (req.id === "gone") throw new ServiceError(410, "user was deleted");
      return userType.fromObject({
        id: req.id,
        region: req.region,
        display_name: "Ada",
        tier: "TIER_PRO",
      });
    },
  });
  const list = startWorker({
    nc,
    root,
    subject: "svc.users.*.list",
    requestType: "users.v1.ListUsersRequest",
    responseType: "users.v1.ListUsersResponse",
    handle(req: protobuf.Message, ctx) {
      remember(ctx.subject, req, ctx.headers);
      return { users: [], next_page_token: "" };
    },
  });
  const create = startWorker({
    nc,
    root,
    subject: "svc.users.*.create",
    requestType: "users.v1.CreateUserRequest",
    responseType: "users.v1.User",
    handle(req: protobuf.Message & { user?: protobuf.Message }, ctx) {
      remember(ctx.subject, req, ctx.headers);
      ctx.httpStatus = 201;
      return req.user ?? {};
    },
  });
  return [get, list, create];
}

/**
 * An orders.get worker that answers every request with a PAID order of the
 * asked id and keeps what it received (a dead letter's replay target).
 */
export function startPaidOrdersWorker(
  nc: NatsConnection,
  root: protobuf.Root,
): { seen: Msg[]; stop: () => void } {
  const getType = root.lookupType("orders.v1.GetOrderRequest");
  const orderType = root.lookupType("orders.v1.Order");
  const seen: Msg[] = [];
  const sub = nc.subscribe("svc.orders.get", {
    callback: (_err, msg) => {
      seen.push(msg);
      const { id } = getType.decode(msg.data) as protobuf.Message & { id: string };
      msg.respond(orderType.encode(orderType.fromObject({ id, status: "PAID" })).finish());
    },
  });
  return { seen, stop: () => sub.unsubscribe() };
}

/** Orders responder without the kit, to send what a broken worker would. */
export function startOrdersResponder(nc: NatsConnection, root: protobuf.Root): void {
  const getType = root.lookupType("orders.v1.GetOrderRequest");
  const orderType = root.lookupType("orders.v1.Order");
  const createType = root.lookupType("orders.v1.CreateOrderRequest");
  nc.subscribe("svc.orders.get", {
    callback: (_err, msg) => {
      const { id } = getType.decode(msg.data) as protobuf.Message & { id: string };
      if (id === "slow") return; // never answers: the gateway times out
      if (id === "garbage") return void msg.respond(new Uint8Array([0xff, 0xff, 0xff, 0xff]));
      if (id === "odd") {
        const h = natsHeaders();
        h.set("Nats-Service-Error-Code", "700");
        h.set("Nats-Service-Error", "not an HTTP status");
        return void msg.respond(new Uint8Array(0), { headers: h });
      }
      const statusById: Record<string, string> = {
        accepted: "202",
        "no-content": "204",
        "reset-content": "205",
      };
      if (Object.hasOwn(statusById, id)) {
        const h = natsHeaders();
        h.set("Http-Status", statusById[id]!);
        return void msg.respond(orderType.encode({ id }).finish(), { headers: h });
      }
      msg.respond(
        orderType
          .encode(orderType.fromObject({ id, status: "PAID", total_cents: "1500" }))
          .finish(),
      );
    },
  });
  nc.subscribe("svc.orders.create", {
    callback: (_err, msg) => {
      const req = createType.decode(msg.data) as protobuf.Message & { order?: protobuf.Message };
      msg.respond(orderType.encode(req.order ?? {}).finish());
    },
  });
}

/** A users.get worker (svc.users.*.get) answering with `handle`. */
export function usersGetWorker(
  nc: NatsConnection,
  root: protobuf.Root,
  // biome-ignore lint/suspicious/noExplicitAny: each test names the request fields it reads
  handle: WorkerOptions<any, object>["handle"],
  onError?: WorkerOptions<unknown, object>["onError"],
): Worker {
  return startWorker({
    nc,
    root,
    subject: "svc.users.*.get",
    requestType: "users.v1.GetUserRequest",
    responseType: "users.v1.User",
    handle,
    onError,
  });
}

/**
 * A nats-server and a users.get worker that holds every request until
 * `release()`: a request stays in flight for as long as a test needs.
 */
export async function startHoldingWorker(t: Teardown) {
  let arrivals = 0;
  const server = await startNatsServer();
  t.teardown(() => server.stop());
  const nc = await connect({ servers: server.url });
  t.teardown(() => nc.close());
  let arrived!: () => void;
  const requestArrived = new Promise<void>((resolve) => (arrived = resolve));
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const worker = usersGetWorker(nc, loadProtos([PROTO_DIR]), async (req: { id: string }) => {
    arrivals++;
    arrived();
    await released;
    return { id: req.id };
  });
  t.teardown(() => worker.stop());
  t.teardown(() => release());
  await nc.flush();
  return { server, requestArrived, release, arrivals: () => arrivals };
}

interface Teardown {
  teardown(fn: () => unknown): void;
}
