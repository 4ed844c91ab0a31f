/**
 * The example company's data and the rules its services apply to it (ExampleStore),
 * shared by the example NATS worker and the example legacy HTTP service so that
 * both sides answer the same requests the same way.
 */

export interface ExampleUser {
  id: string;
  region: string;
  display_name: string;
  email: string;
  tier: "TIER_UNSPECIFIED" | "TIER_FREE" | "TIER_PRO" | "TIER_ENTERPRISE";
  /** int64: kept as a decimal string so values past 2^53 stay exact. */
  balance_cents: string;
  tags: string[];
  address: { street: string; city: string; country_code: string; postal_code: string } | null;
  created_at: string;
  nickname: string | null;
  verified: boolean;
  labels: Record<string, string>;
}

export function seedUsers(): Map<string, ExampleUser> {
  const users: ExampleUser[] = [
    {
      id: "u-1001",
      region: "eu-west",
      display_name: "Ada Lovelace",
      email: "ada@example.com",
      tier: "TIER_PRO",
      balance_cents: "9007199254740993",
      tags: ["early-adopter", "beta"],
      address: {
        street: "12 St James's Sq",
        city: "London",
        country_code: "GB",
        postal_code: "SW1Y 4JH",
      },
      created_at: "2021-03-04T05:06:07.123Z",
      nickname: "ada",
      verified: true,
      labels: { team: "analytics" },
    },
    {
      id: "u-1002",
      region: "eu-west",
      display_name: "Grace Hopper",
      email: "grace@example.com",
      tier: "TIER_ENTERPRISE",
      balance_cents: "125000",
      tags: [],
      address: null,
      created_at: "2022-11-30T00:00:00Z",
      nickname: null,
      verified: false,
      labels: {},
    },
  ];
  return new Map(users.map((user) => [`${user.region}/${user.id}`, user]));
}

export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };

export interface ExampleLineItem {
  sku: string;
  quantity: number;
  /** int64 as a decimal string. */
  unit_price_cents: string;
}

export interface ExampleOrder {
  id: string;
  user_id: string;
  status: "ORDER_STATUS_UNSPECIFIED" | "PENDING" | "PAID" | "SHIPPED" | "CANCELLED";
  items: ExampleLineItem[];
  /** int64 as a decimal string. */
  total_cents: string;
  /** RFC 3339, as the legacy service prints it. */
  placed_at: string;
  /** A ProtoJSON duration, e.g. "172800s"; null when none was promised. */
  delivery_window: string | null;
  metadata: Record<string, JsonValue>;
  /** The `payment` oneof: at most one of the two is set. */
  card_token?: string;
  invoice_number?: string;
  /** bytes, base64. */
  signature: string;
  discount_rate: number;
}

export function seedOrders(): Map<string, ExampleOrder> {
  const orders: ExampleOrder[] = [
    {
      id: "o-5001",
      user_id: "u-1001",
      status: "PAID",
      items: [
        { sku: "BOOK-NOTES-1843", quantity: 1, unit_price_cents: "4200" },
        { sku: "PEN-BRASS", quantity: 3, unit_price_cents: "350" },
      ],
      total_cents: "4987",
      placed_at: "2024-05-06T07:08:09.250Z",
      delivery_window: "172800s",
      metadata: { channel: "web", gift: false, campaign: { name: "spring", round: 2 } },
      card_token: "tok_visa_4242",
      signature: "c2lnbmVkLWJ5LWxlZ2FjeQ==",
      discount_rate: 0.05,
    },
    {
      id: "o-5002",
      user_id: "u-1002",
      status: "SHIPPED",
      items: [{ sku: "COMPILER-A0", quantity: 1, unit_price_cents: "9007199254740993" }],
      total_cents: "9007199254740993",
      placed_at: "2024-06-01T12:00:00Z",
      delivery_window: null,
      metadata: {},
      invoice_number: "INV-2024-0042",
      signature: "",
      discount_rate: 0,
    },
  ];
  return new Map(orders.map((order) => [order.id, order]));
}

/**
 * A refusal both services give alike: the HTTP status, the error code and the
 * detail of the legacy-shaped error body (users: {error, message}; orders:
 * {code, detail}). Each service prints it in its own way.
 */
export class ExampleError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
  ) {
    super(detail);
    this.name = "ExampleError";
  }
}

export interface AddressInput {
  street?: string;
  city?: string;
  country_code?: string;
  postal_code?: string;
}

/** A user as a client sends it; unset fields are undefined (as are proto3 defaults). */
export interface UserInput {
  id?: string;
  region?: string;
  display_name?: string;
  email?: string;
  /** A Tier name; a number when the client sent one that names no value. */
  tier?: string | number;
  /** int64 as a decimal string. */
  balance_cents?: string;
  tags?: string[];
  address?: AddressInput;
  /** undefined: no nickname; "" is a nickname that was set empty. */
  nickname?: string;
  labels?: Record<string, string>;
}

export interface ListUsersQuery {
  page_size?: number;
  page_token?: string;
  /** Tier names (numbers for values that name no tier: they match nobody). */
  tiers?: Array<string | number>;
  near?: AddressInput;
}

export interface UsersPage {
  users: ExampleUser[];
  /** "" on the last page. */
  next_page_token: string;
}

export interface OrderInput {
  id?: string;
  user_id?: string;
  /** An OrderStatus name, or a number that names none. */
  status?: string | number;
  items?: Array<{ sku?: string; quantity?: number; unit_price_cents?: string }>;
  /** A duration like "1.5s" (durationText's form). */
  delivery_window?: string;
  metadata?: Record<string, JsonValue>;
  card_token?: string;
  invoice_number?: string;
  /** bytes, standard base64. */
  signature?: string;
  discount_rate?: number;
}

const DEFAULT_PAGE_SIZE = 10;
const MAX_PAGE_SIZE = 100;
const ID = /^[A-Za-z0-9_-]{1,64}$/;
const TIERS = new Set(["TIER_FREE", "TIER_PRO", "TIER_ENTERPRISE"]);
/** users.v1.User's fields: what a field mask may name. */
export const USER_FIELDS: ReadonlySet<string> = new Set([
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

/**
 * The rules of the example company's users and orders services over in-memory
 * data seeded from above: what is found, listed, accepted or refused, and why.
 * The NATS worker (services.ts) and the legacy HTTP service (legacy-server.ts)
 * both call it, each with its own store, so they answer alike by construction
 * and only the wire format differs.
 */
export class ExampleStore {
  readonly users = seedUsers();
  readonly orders = seedOrders();
  readonly #now: () => Date;
  #nextUser = 2001;
  #nextOrder = 6001;

  constructor(options: { now?: () => Date } = {}) {
    this.#now = options.now ?? (() => new Date());
  }

  // --- users ----------------------------------------------------------------

  getUser(region: string, id: string): ExampleUser {
    const user = this.users.get(`${region}/${id}`);
    if (user === undefined) throw new ExampleError(404, "not_found", `no user ${id} in ${region}`);
    return user;
  }

  listUsers(region: string, query: ListUsersQuery): UsersPage {
    const size = query.page_size ?? 0;
    if (size < 0) throw invalid("page_size must not be negative");
    const pageSize = Math.min(size === 0 ? DEFAULT_PAGE_SIZE : size, MAX_PAGE_SIZE);
    const offset = pageOffset(query.page_token ?? "");
    if (offset === undefined) throw invalid("page_token: not a token from a previous page");
    const tiers = new Set<string | number>(query.tiers ?? []);
    const near = query.near ?? {};
    const matching = [...this.users.values()]
      .filter((user) => user.region === region)
      .filter((user) => tiers.size === 0 || tiers.has(user.tier))
      .filter((user) => matchesNear(user, near))
      .sort((a, b) => a.id.localeCompare(b.id));
    const more = offset + pageSize < matching.length;
    return {
      users: matching.slice(offset, offset + pageSize),
      next_page_token: more ? pageToken(offset + pageSize) : "",
    };
  }

  createUser(region: string, input: UserInput | undefined): ExampleUser {
    if (input === undefined) throw invalid("user: required");
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
    const tier = input.tier ?? "TIER_UNSPECIFIED";
    if (tier !== "TIER_UNSPECIFIED" && !TIERS.has(String(tier))) {
      problems.push(`tier: ${tier} is not a tier`);
    }
    if (input.balance_cents?.startsWith("-")) {
      problems.push("balance_cents: must not be negative");
    }
    if (problems.length > 0) throw invalid(problems.join("; "));

    const id = input.id || this.#newUserId(region);
    if (this.users.has(`${region}/${id}`)) {
      throw new ExampleError(409, "already_exists", `user ${id} already exists in ${region}`);
    }
    const address = input.address;
    const user: ExampleUser = {
      id,
      region,
      display_name: input.display_name!.trim(),
      email: input.email!.trim(),
      tier: (tier === "TIER_UNSPECIFIED" ? "TIER_FREE" : tier) as ExampleUser["tier"],
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
      nickname: input.nickname ?? null,
      verified: false,
      labels: input.labels ?? {},
    };
    this.users.set(`${region}/${id}`, user);
    return user;
  }

  #newUserId(region: string): string {
    while (this.users.has(`${region}/u-${this.#nextUser}`)) this.#nextUser++;
    return `u-${this.#nextUser++}`;
  }

  // --- orders ---------------------------------------------------------------

  getOrder(id: string): ExampleOrder {
    const order = this.orders.get(id);
    if (order === undefined) throw new ExampleError(404, "not_found", `no order ${id}`);
    return order;
  }

  createOrder(input: OrderInput | undefined): ExampleOrder {
    if (input === undefined) throw invalid("order: required");
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
      !["ORDER_STATUS_UNSPECIFIED", "PENDING"].includes(String(input.status))
    ) {
      problems.push(`status: a new order is PENDING, not ${input.status}`);
    }
    if (problems.length > 0) throw invalid(problems.join("; "));

    const id = input.id || this.#newOrderId();
    if (this.orders.has(id)) {
      throw new ExampleError(409, "already_exists", `order ${id} already exists`);
    }
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
      delivery_window: input.delivery_window ?? "259200s",
      metadata: input.metadata ?? {},
      ...(input.card_token === undefined ? {} : { card_token: input.card_token }),
      ...(input.invoice_number === undefined ? {} : { invoice_number: input.invoice_number }),
      signature: input.signature ?? "",
      discount_rate: rate,
    };
    this.orders.set(id, order);
    return order;
  }

  #newOrderId(): string {
    while (this.orders.has(`o-${this.#nextOrder}`)) this.#nextOrder++;
    return `o-${this.#nextOrder++}`;
  }
}

/**
 * A field mask's paths (snake_case or lowerCamel) -> the top-level User fields
 * to keep; undefined keeps them all. "address.city" keeps the whole address.
 */
export function userFieldMask(paths: readonly string[]): ReadonlySet<string> | undefined {
  if (paths.length === 0) return undefined;
  const fields = paths.map((path) => snakeCase(path).split(".")[0] ?? "");
  const unknown = paths.filter((_, i) => !USER_FIELDS.has(fields[i]!));
  if (unknown.length > 0) {
    throw invalid(`fields: unknown field ${unknown.map(snakeCase).join(", ")}`);
  }
  return new Set(fields);
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

function invalid(detail: string): ExampleError {
  return new ExampleError(400, "invalid_argument", detail);
}

function snakeCase(path: string): string {
  return path.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function matchesNear(user: ExampleUser, near: AddressInput): boolean {
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
