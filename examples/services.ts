/**
 * The example users and orders services as NATS handlers over in-memory data
 * (seeded from data.ts). They behave like the legacy HTTP services they replace:
 * the same data, the same status codes, the same legacy-shaped error bodies
 * (users.v1.Error {error, message}; orders.v1.Error {code, detail}).
 */
import type protobuf from "protobufjs";
import { ServiceError, type WorkerContext } from "../src/worker/index.js";
import {
  type ExampleLineItem,
  type ExampleOrder,
  type ExampleUser,
  seedOrders,
  seedUsers,
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

/** One NATS endpoint: what startWorker needs besides the connection and the root. */
export interface Endpoint {
  readonly subject: string;
  readonly requestType: string;
  readonly responseType: string;
  readonly errorType: string;
  readonly handle: (request: protobuf.Message, ctx: WorkerContext) => protobuf.Message;
}

const DEFAULT_PAGE_SIZE = 10;
const MAX_PAGE_SIZE = 100;
const ID = /^[A-Za-z0-9_-]{1,64}$/;
const USER_FIELDS = new Set([
  "id",
  "region",
  "display_name",
  "email",
  "tier",
  "balance_cents",
  "tags",
  "address",
  "created_at",
  "nickname",
  "verified",
  "labels",
]);

/** A users.v1.Error reply: `message` is the header (for logs), `detail` the body's message. */
function usersError(status: number, error: string, detail: string): ServiceError {
  const summary: Record<number, string> = {
    400: "invalid argument",
    404: "user not found",
    409: "user already exists",
  };
  return new ServiceError(status, summary[status] ?? error, { error, message: detail });
}

/** An orders.v1.Error reply. */
function ordersError(status: number, code: string, detail: string): ServiceError {
  const summary: Record<number, string> = {
    400: "invalid argument",
    404: "order not found",
    409: "order already exists",
  };
  return new ServiceError(status, summary[status] ?? code, { code, detail });
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
  readonly users: Map<string, ExampleUser>;
  readonly orders: Map<string, ExampleOrder>;
  readonly #types: Record<string, protobuf.Type>;
  readonly #now: () => Date;
  #nextUser = 2001;
  #nextOrder = 6001;

  constructor(root: protobuf.Root, options: { now?: () => Date } = {}) {
    this.users = seedUsers();
    this.orders = seedOrders();
    this.#now = options.now ?? (() => new Date());
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

  /** Every route of routes.yaml; `{region}` subjects are served for all regions. */
  endpoints(): Endpoint[] {
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
    const region = regionOf(req.region, ctx.subject);
    const id = req.id ?? "";
    const user = this.users.get(`${region}/${id}`);
    if (user === undefined) throw usersError(404, "not_found", `no user ${id} in ${region}`);
    const paths = (req.fields?.paths ?? []).map(snakeCase);
    if (paths.length === 0) return userMessage(this.#type("users.v1.User"), user);
    const unknown = paths.filter((path) => !USER_FIELDS.has(path.split(".")[0] ?? ""));
    if (unknown.length > 0) {
      throw usersError(400, "invalid_argument", `fields: unknown field ${unknown.join(", ")}`);
    }
    const full = this.#type("users.v1.User").toObject(
      userMessage(this.#type("users.v1.User"), user),
    );
    const kept = Object.fromEntries(
      Object.entries(full).filter(([key]) => paths.some((path) => path.split(".")[0] === key)),
    );
    return this.#type("users.v1.User").fromObject(kept);
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
    const region = regionOf(req.region, ctx.subject);
    const size = req.page_size ?? 0;
    if (size < 0) throw usersError(400, "invalid_argument", "page_size must not be negative");
    const pageSize = Math.min(size === 0 ? DEFAULT_PAGE_SIZE : size, MAX_PAGE_SIZE);
    const offset = pageOffset(req.page_token ?? "");
    if (offset === undefined) {
      throw usersError(400, "invalid_argument", "page_token: not a token from a previous page");
    }
    const tiers = new Set(req.tiers ?? []);
    const near = req.near ?? {};
    const matching = [...this.users.values()]
      .filter((user) => user.region === region)
      .filter((user) => tiers.size === 0 || tiers.has(user.tier))
      .filter((user) => matchesNear(user, near))
      .sort((a, b) => a.id.localeCompare(b.id));
    const page = matching.slice(offset, offset + pageSize);
    const more = offset + pageSize < matching.length;
    const User = this.#type("users.v1.User");
    return this.#type("users.v1.ListUsersResponse").fromObject({
      users: page.map((user) => User.toObject(userMessage(User, user))),
      next_page_token: more ? pageToken(offset + pageSize) : "",
    });
  }

  createUser(req: { region?: string; user?: PlainUser }, ctx: WorkerContext): protobuf.Message {
    const region = regionOf(req.region, ctx.subject);
    const input = req.user;
    if (input === undefined) throw usersError(400, "invalid_argument", "user: required");
    const problems: string[] = [];
    if (!input.display_name?.trim()) problems.push("display_name: required");
    if (!input.email?.trim()) problems.push("email: required");
    else if (!/^[^@\s]+@[^@\s]+$/.test(input.email)) problems.push("email: not an email address");
    if (input.id !== undefined && input.id !== "" && !ID.test(input.id)) {
      problems.push("id: 1-64 letters, digits, _ or -");
    }
    if (input.region !== undefined && input.region !== "" && input.region !== region) {
      problems.push(`region: "${input.region}" differs from the path's region "${region}"`);
    }
    if (input.balance_cents?.startsWith("-")) {
      problems.push("balance_cents: must not be negative");
    }
    if (problems.length > 0) throw usersError(400, "invalid_argument", problems.join("; "));

    const id = input.id || this.#newUserId(region);
    if (this.users.has(`${region}/${id}`)) {
      throw usersError(409, "already_exists", `user ${id} already exists in ${region}`);
    }
    const address = input.address;
    const user: ExampleUser = {
      id,
      region,
      display_name: input.display_name!.trim(),
      email: input.email!.trim(),
      tier: (input.tier === undefined || input.tier === "TIER_UNSPECIFIED"
        ? "TIER_FREE"
        : input.tier) as ExampleUser["tier"],
      balance_cents: input.balance_cents ?? "0",
      tags: input.tags ?? [],
      address:
        address === undefined
          ? null
          : {
              street: address.street ?? "",
              city: address.city ?? "",
              country_code: address.country_code ?? "",
              postal_code: address.postal_code ?? "",
            },
      created_at: this.#now().toISOString(),
      nickname: input.nickname === undefined ? null : (input.nickname.value ?? ""),
      verified: false,
      labels: input.labels ?? {},
    };
    this.users.set(`${region}/${id}`, user);
    ctx.httpStatus = 201;
    return userMessage(this.#type("users.v1.User"), user);
  }

  #newUserId(region: string): string {
    while (this.users.has(`${region}/u-${this.#nextUser}`)) this.#nextUser++;
    return `u-${this.#nextUser++}`;
  }

  // --- orders.v1 ----------------------------------------------------------

  getOrder(req: { id?: string }): protobuf.Message {
    const id = req.id ?? "";
    const order = this.orders.get(id);
    if (order === undefined) throw ordersError(404, "not_found", `no order ${id}`);
    return orderMessage(this.#type("orders.v1.Order"), order);
  }

  createOrder(req: { order?: PlainOrder }, ctx: WorkerContext): protobuf.Message {
    const input = req.order;
    if (input === undefined) throw ordersError(400, "invalid_argument", "order: required");
    const problems: string[] = [];
    const userId = input.user_id ?? "";
    if (userId === "") problems.push("user_id: required");
    else if (![...this.users.values()].some((user) => user.id === userId)) {
      problems.push(`user_id: no user ${userId}`);
    }
    const items = input.items ?? [];
    if (items.length === 0) problems.push("items: at least one line item is required");
    items.forEach((item, i) => {
      if (!item.sku) problems.push(`items[${i}].sku: required`);
      if ((item.quantity ?? 0) < 1) problems.push(`items[${i}].quantity: must be at least 1`);
      if ((item.unit_price_cents ?? "0").startsWith("-")) {
        problems.push(`items[${i}].unit_price_cents: must not be negative`);
      }
    });
    const rate = input.discount_rate ?? 0;
    if (!(rate >= 0 && rate < 1)) problems.push("discount_rate: must be in [0, 1)");
    if (input.id !== undefined && input.id !== "" && !ID.test(input.id)) {
      problems.push("id: 1-64 letters, digits, _ or -");
    }
    if (
      input.status !== undefined &&
      !["ORDER_STATUS_UNSPECIFIED", "PENDING"].includes(input.status)
    ) {
      problems.push(`status: a new order is PENDING, not ${input.status}`);
    }
    if (problems.length > 0) throw ordersError(400, "invalid_argument", problems.join("; "));

    const id = input.id || this.#newOrderId();
    if (this.orders.has(id)) throw ordersError(409, "already_exists", `order ${id} already exists`);
    const lineItems: ExampleLineItem[] = items.map((item) => ({
      sku: item.sku ?? "",
      quantity: item.quantity ?? 0,
      unit_price_cents: item.unit_price_cents ?? "0",
    }));
    const order: ExampleOrder = {
      id,
      user_id: userId,
      status: "PENDING",
      items: lineItems,
      total_cents: totalCents(lineItems, rate),
      placed_at: this.#now().toISOString(),
      delivery_window:
        input.delivery_window === undefined ? "259200s" : durationText(input.delivery_window),
      metadata: jsonOfStruct(input.metadata),
      ...(input.card_token === undefined ? {} : { card_token: input.card_token }),
      ...(input.invoice_number === undefined ? {} : { invoice_number: input.invoice_number }),
      signature: input.signature ?? "",
      discount_rate: rate,
    };
    this.orders.set(id, order);
    ctx.httpStatus = 201;
    return orderMessage(this.#type("orders.v1.Order"), order);
  }

  #newOrderId(): string {
    while (this.orders.has(`o-${this.#nextOrder}`)) this.#nextOrder++;
    return `o-${this.#nextOrder++}`;
  }
}

/** The sum of the line items, less the discount (rounded down to the cent), exact past 2^53. */
export function totalCents(items: readonly ExampleLineItem[], discountRate: number): string {
  const subtotal = items.reduce(
    (sum, item) => sum + BigInt(item.quantity) * BigInt(item.unit_price_cents),
    0n,
  );
  const keptBasisPoints = 10_000n - BigInt(Math.round(discountRate * 10_000));
  return String((subtotal * keptBasisPoints) / 10_000n);
}

/** The `{region}` token: from the request (bound from the path), else from the subject. */
function regionOf(region: string | undefined, subject: string): string {
  return region || (subject.split(".")[2] ?? "");
}

function snakeCase(path: string): string {
  return path.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function matchesNear(user: ExampleUser, near: PlainAddress): boolean {
  const address = user.address;
  for (const key of ["street", "city", "country_code", "postal_code"] as const) {
    const wanted = near[key];
    if (wanted === undefined || wanted === "") continue;
    if (address === null || address[key].toLowerCase() !== wanted.toLowerCase()) return false;
  }
  return true;
}

/** Page tokens are opaque to clients: base64url of "offset:N". */
function pageToken(offset: number): string {
  return Buffer.from(`offset:${offset}`).toString("base64url");
}

function pageOffset(token: string): number | undefined {
  if (token === "") return 0;
  const match = /^offset:(\d{1,9})$/.exec(Buffer.from(token, "base64url").toString());
  return match === null ? undefined : Number(match[1]);
}
