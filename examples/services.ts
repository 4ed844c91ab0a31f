/**
 * The example users and orders services as NATS handlers over in-memory data
 * (an ExampleStore seeded from data.ts). They behave like the legacy HTTP services
 * they replace because both run the same store: the same data, the same status
 * codes, the same legacy-shaped error bodies (users.v1.Error {error, message};
 * orders.v1.Error {code, detail}). This file only converts between protobuf
 * messages and the store's records.
 */
import type protobuf from "protobufjs";
import { ServiceError, type ServiceIdentity, type WorkerContext } from "../src/worker/index.js";
import {
  ExampleError,
  type ExampleOrder,
  ExampleStore,
  type ExampleUser,
  type OrderInput,
  type UserInput,
  userFieldMask,
} from "./data.js";
import {
  durationText,
  jsonOfStruct,
  orderMessage,
  PLAIN,
  type SecondsNanos,
  type StructObject,
  userMessage,
} from "./messages.js";

export { totalCents } from "./data.js";

/** One NATS endpoint: an entry of startService's `endpoints`. */
export interface Endpoint {
  readonly subject: string;
  readonly requestType: string;
  readonly responseType: string;
  readonly errorType: string;
  readonly handle: (request: protobuf.Message, ctx: WorkerContext) => protobuf.Message;
}

/** A service as startService takes it: in `$SRV` discovery, `example-users` or `example-orders`. */
export interface ExampleService {
  readonly service: ServiceIdentity;
  readonly endpoints: readonly Endpoint[];
}

/** The NATS error header's short message (for logs); the body carries the detail. */
const USERS_SUMMARY: Record<number, string> = {
  400: "invalid argument",
  404: "user not found",
  409: "user already exists",
};
const ORDERS_SUMMARY: Record<number, string> = {
  400: "invalid argument",
  404: "order not found",
  409: "order already exists",
};

/** Runs `fn`, turning the store's refusals into a users.v1.Error reply. */
function asUsersError<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (!(error instanceof ExampleError)) throw error;
    throw new ServiceError(error.status, USERS_SUMMARY[error.status] ?? error.code, {
      error: error.code,
      message: error.detail,
    });
  }
}

/** The same for orders.v1.Error replies. */
function asOrdersError<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (!(error instanceof ExampleError)) throw error;
    throw new ServiceError(error.status, ORDERS_SUMMARY[error.status] ?? error.code, {
      code: error.code,
      detail: error.detail,
    });
  }
}

interface PlainAddress {
  street?: string;
  city?: string;
  country_code?: string;
  postal_code?: string;
}

interface PlainUser {
  id?: string;
  region?: string;
  display_name?: string;
  email?: string;
  tier?: string;
  balance_cents?: string;
  tags?: string[];
  address?: PlainAddress;
  nickname?: { value?: string };
  verified?: boolean;
  labels?: Record<string, string>;
}

interface PlainOrder {
  id?: string;
  user_id?: string;
  status?: string;
  items?: Array<{ sku?: string; quantity?: number; unit_price_cents?: string }>;
  delivery_window?: Partial<SecondsNanos>;
  metadata?: StructObject;
  card_token?: string;
  invoice_number?: string;
  signature?: string;
  discount_rate?: number;
}

export class ExampleServices {
  readonly store: ExampleStore;
  readonly #types: Record<string, protobuf.Type>;

  constructor(root: protobuf.Root, options: { now?: () => Date } = {}) {
    this.store = new ExampleStore(options);
    const names = [
      "users.v1.GetUserRequest",
      "users.v1.ListUsersRequest",
      "users.v1.CreateUserRequest",
      "users.v1.User",
      "users.v1.ListUsersResponse",
      "orders.v1.GetOrderRequest",
      "orders.v1.CreateOrderRequest",
      "orders.v1.Order",
    ];
    this.#types = Object.fromEntries(names.map((name) => [name, root.lookupType(name)]));
  }

  get users(): Map<string, ExampleUser> {
    return this.store.users;
  }

  get orders(): Map<string, ExampleOrder> {
    return this.store.orders;
  }

  /** Every route of routes.yaml; `{region}` subjects are served for all regions. */
  endpoints(): Endpoint[] {
    return this.services().flatMap((service) => service.endpoints);
  }

  services(): ExampleService[] {
    const version = "1.0.0";
    return [
      { service: { name: "example-users", version }, endpoints: this.#usersEndpoints() },
      { service: { name: "example-orders", version }, endpoints: this.#ordersEndpoints() },
    ];
  }

  #usersEndpoints(): Endpoint[] {
    return [
      this.#endpoint(
        "svc.users.*.get",
        "users.v1",
        "GetUserRequest",
        "User",
        this.getUser.bind(this),
      ),
      this.#endpoint(
        "svc.users.*.list",
        "users.v1",
        "ListUsersRequest",
        "ListUsersResponse",
        this.listUsers.bind(this),
      ),
      this.#endpoint(
        "svc.users.*.create",
        "users.v1",
        "CreateUserRequest",
        "User",
        this.createUser.bind(this),
      ),
    ];
  }

  #ordersEndpoints(): Endpoint[] {
    return [
      this.#endpoint(
        "svc.orders.get",
        "orders.v1",
        "GetOrderRequest",
        "Order",
        this.getOrder.bind(this),
      ),
      this.#endpoint(
        "svc.orders.create",
        "orders.v1",
        "CreateOrderRequest",
        "Order",
        this.createOrder.bind(this),
      ),
    ];
  }

  #endpoint(
    subject: string,
    pkg: string,
    request: string,
    response: string,
    handler: (request: never, ctx: WorkerContext) => protobuf.Message,
  ): Endpoint {
    const requestType = `${pkg}.${request}`;
    const type = this.#type(requestType);
    return {
      subject,
      requestType,
      responseType: `${pkg}.${response}`,
      errorType: `${pkg}.Error`,
      // The handlers take the plain object form of their request type (see PLAIN).
      handle: (message, ctx) => handler(type.toObject(message, PLAIN) as never, ctx),
    };
  }

  #type(name: string): protobuf.Type {
    const type = this.#types[name];
    if (type === undefined) throw new Error(`unknown type ${name}`);
    return type;
  }

  // --- users.v1 -----------------------------------------------------------

  getUser(
    req: { region?: string; id?: string; fields?: { paths?: string[] } },
    ctx: WorkerContext,
  ): protobuf.Message {
    return asUsersError(() => {
      const User = this.#type("users.v1.User");
      const user = this.store.getUser(regionOf(req.region, ctx.subject), req.id ?? "");
      const mask = userFieldMask(req.fields?.paths ?? []);
      if (mask === undefined) return userMessage(User, user);
      const full = User.toObject(userMessage(User, user));
      return User.fromObject(
        Object.fromEntries(Object.entries(full).filter(([key]) => mask.has(key))),
      );
    });
  }

  listUsers(
    req: {
      region?: string;
      page_size?: number;
      page_token?: string;
      tiers?: string[];
      near?: PlainAddress;
    },
    ctx: WorkerContext,
  ): protobuf.Message {
    return asUsersError(() => {
      const page = this.store.listUsers(regionOf(req.region, ctx.subject), req);
      const User = this.#type("users.v1.User");
      return this.#type("users.v1.ListUsersResponse").fromObject({
        users: page.users.map((user) => User.toObject(userMessage(User, user))),
        next_page_token: page.next_page_token,
      });
    });
  }

  createUser(req: { region?: string; user?: PlainUser }, ctx: WorkerContext): protobuf.Message {
    return asUsersError(() => {
      const region = regionOf(req.region, ctx.subject);
      const user = this.store.createUser(region, req.user && userInput(req.user));
      ctx.httpStatus = 201;
      return userMessage(this.#type("users.v1.User"), user);
    });
  }

  // --- orders.v1 ----------------------------------------------------------

  getOrder(req: { id?: string }): protobuf.Message {
    return asOrdersError(() =>
      orderMessage(this.#type("orders.v1.Order"), this.store.getOrder(req.id ?? "")),
    );
  }

  createOrder(req: { order?: PlainOrder }, ctx: WorkerContext): protobuf.Message {
    return asOrdersError(() => {
      const order = this.store.createOrder(req.order && orderInput(req.order));
      ctx.httpStatus = 201;
      return orderMessage(this.#type("orders.v1.Order"), order);
    });
  }
}

function userInput(user: PlainUser): UserInput {
  const { nickname, verified: _ignored, ...rest } = user;
  return nickname === undefined ? rest : { ...rest, nickname: nickname.value ?? "" };
}

function orderInput(order: PlainOrder): OrderInput {
  const { delivery_window, metadata, ...rest } = order;
  return {
    ...rest,
    ...(delivery_window === undefined ? {} : { delivery_window: durationText(delivery_window) }),
    metadata: jsonOfStruct(metadata),
  };
}

/** The `{region}` token: from the request (bound from the path), else from the subject. */
function regionOf(region: string | undefined, subject: string): string {
  return region || (subject.split(".")[2] ?? "");
}
