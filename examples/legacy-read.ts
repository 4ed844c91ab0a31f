/**
 * How the legacy services read requests: JSON bodies (field names in snake_case or
 * lowerCamel, int64 as strings or numbers, enums by name or number, null meaning
 * "not set") and query parameters, into the store's inputs. A value of the wrong
 * kind is a 400 naming the field, in the service's own error body.
 *
 * The gateway refuses such requests itself (400 problem+json) before either side
 * sees them, so these messages only meet clients that call the legacy directly.
 */
import { isSafeNumber, parse as parseLossless } from "lossless-json";
import {
  type AddressInput,
  ExampleError,
  type JsonValue,
  type ListUsersQuery,
  type OrderInput,
  USER_FIELDS,
  type UserInput,
} from "./data.js";
import { durationOf, durationText, timestampOf } from "./messages.js";

const TIERS = ["TIER_UNSPECIFIED", "TIER_FREE", "TIER_PRO", "TIER_ENTERPRISE"];
const ORDER_STATUSES = ["ORDER_STATUS_UNSPECIFIED", "PENDING", "PAID", "SHIPPED", "CANCELLED"];
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function bad(path: string, problem: string): ExampleError {
  return new ExampleError(400, "invalid_argument", `${path}: ${problem}`);
}

function describe(value: unknown): string {
  if (typeof value === "bigint") return String(value);
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

/**
 * A request body's JSON; integers past 2^53 come back as bigint (never rounded).
 * Invalid JSON is a 400.
 */
export function parseBody(text: string): unknown {
  try {
    return parseLossless(text, null, (number) => {
      if (isSafeNumber(number) || !/^-?\d+$/.test(number)) return Number(number);
      return BigInt(number);
    });
  } catch (error) {
    throw new ExampleError(
      400,
      "invalid_argument",
      `invalid JSON: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

const camel = (name: string) => name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/**
 * The members of a JSON object by proto field name; each may be given by its
 * proto or lowerCamel name. Null members are left out (null means "not set").
 */
function members(value: unknown, path: string, fields: readonly string[]): Map<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw bad(path, `expected a JSON object, got ${describe(value)}`);
  }
  const out = new Map<string, unknown>();
  const seen = new Set<string>();
  for (const [key, item] of Object.entries(value)) {
    const field = fields.find((name) => name === key || camel(name) === key);
    if (field === undefined) throw bad(path, `unknown field "${key}"`);
    if (seen.has(field)) throw bad(`${path}.${field}`, "given twice");
    seen.add(field);
    if (item !== null) out.set(field, item);
  }
  return out;
}

function text(value: unknown, path: string): string {
  if (typeof value !== "string") throw bad(path, `expected a string, got ${describe(value)}`);
  return value;
}

function int64(value: unknown, path: string): string {
  let n: bigint | undefined;
  if (typeof value === "bigint") n = value;
  else if (typeof value === "number" && Number.isInteger(value)) n = BigInt(value);
  else if (typeof value === "string" && /^-?\d+$/.test(value)) n = BigInt(value);
  if (n === undefined) throw bad(path, `expected an integer, got ${describe(value)}`);
  if (n < INT64_MIN || n > INT64_MAX) throw bad(path, `out of the int64 range: ${value}`);
  return String(n);
}

function uint32(value: unknown, path: string): number {
  const n = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n > 4294967295) {
    throw bad(path, `expected an integer from 0 to 4294967295, got ${describe(value)}`);
  }
  return n;
}

function double(value: unknown, path: string): number {
  if (typeof value === "number") return value;
  if (typeof value === "bigint") return Number(value);
  if (
    typeof value === "string" &&
    /^(?:NaN|-?Infinity|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)$/.test(value)
  ) {
    return Number(value);
  }
  throw bad(path, `expected a number, got ${describe(value)}`);
}

/** An enum value by name or number: its name, or the number when it names none. */
function enumValue(value: unknown, path: string, names: readonly string[]): string | number {
  if (typeof value === "string" && names.includes(value)) return value;
  const n = typeof value === "string" && /^-?\d+$/.test(value) ? Number(value) : value;
  if (typeof n === "number" && Number.isInteger(n) && Math.abs(n) <= 2147483647) {
    return names[n] ?? n;
  }
  throw bad(path, `expected one of ${names.join(", ")}, got ${describe(value)}`);
}

function list<T>(value: unknown, path: string, read: (item: unknown, path: string) => T): T[] {
  if (!Array.isArray(value)) throw bad(path, `expected an array, got ${describe(value)}`);
  return value.map((item, i) => read(item, `${path}[${i}]`));
}

function stringMap(value: unknown, path: string): Record<string, string> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw bad(path, `expected an object of strings, got ${describe(value)}`);
  }
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [key, text(item, `${path}.${key}`)]),
  );
}

/** Any JSON value, for metadata; bigints become (rounded) numbers, as in a Struct. */
function jsonValue(value: unknown): JsonValue {
  if (typeof value === "bigint") return Number(value);
  if (Array.isArray(value)) return value.map(jsonValue);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, jsonValue(item)]));
  }
  return value as JsonValue;
}

function struct(value: unknown, path: string): Record<string, JsonValue> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw bad(path, `expected a JSON object, got ${describe(value)}`);
  }
  return jsonValue(value) as Record<string, JsonValue>;
}

function timestamp(value: unknown, path: string): void {
  try {
    timestampOf(text(value, path));
  } catch (error) {
    if (error instanceof RangeError) throw bad(path, error.message);
    throw error;
  }
}

/** A duration, normalised ("0172800.50s" -> "172800.5s"). */
function duration(value: unknown, path: string): string {
  try {
    const { seconds, nanos } = durationOf(text(value, path));
    if (Math.abs(Number(seconds)) > 315_576_000_000) throw new RangeError("out of range");
    return durationText({ seconds: String(Number(seconds)), nanos });
  } catch (error) {
    if (error instanceof RangeError)
      throw bad(path, `not a duration like "1.5s": ${describe(value)}`);
    throw error;
  }
}

/** bytes: standard or URL-safe base64 in, standard base64 with padding kept. */
function bytes(value: unknown, path: string): string {
  const s = text(value, path);
  const body = s.replace(/=+$/, "");
  const padded = body !== s;
  if (
    !/^[A-Za-z0-9+/_-]*={0,2}$/.test(s) ||
    (padded ? s.length % 4 !== 0 : body.length % 4 === 1)
  ) {
    throw bad(path, `not base64: ${describe(value)}`);
  }
  return Buffer.from(body, "base64").toString("base64");
}

const ADDRESS_FIELDS = ["street", "city", "country_code", "postal_code"] as const;

function address(value: unknown, path: string): AddressInput {
  const fields = members(value, path, ADDRESS_FIELDS);
  const out: AddressInput = {};
  for (const name of ADDRESS_FIELDS) {
    if (fields.has(name)) out[name] = text(fields.get(name), `${path}.${name}`);
  }
  return out;
}

/** POST /v1/regions/:region/users: the body is the user; none (or null) is undefined. */
export function readUserInput(body: unknown): UserInput | undefined {
  if (body === undefined || body === null) return undefined;
  const fields = members(body, "user", [...USER_FIELDS]);
  const input: UserInput = {};
  const get = <T>(name: string, read: (value: unknown, path: string) => T): T | undefined =>
    fields.has(name) ? read(fields.get(name), name) : undefined;
  const set = <K extends keyof UserInput>(name: K, value: UserInput[K] | undefined) => {
    if (value !== undefined) input[name] = value;
  };
  set("id", get("id", text));
  set("region", get("region", text));
  set("display_name", get("display_name", text));
  set("email", get("email", text));
  set(
    "tier",
    get("tier", (v, p) => enumValue(v, p, TIERS)),
  );
  set("balance_cents", get("balance_cents", int64));
  set(
    "tags",
    get("tags", (v, p) => list(v, p, text)),
  );
  set("address", get("address", address));
  set("nickname", get("nickname", text));
  set("labels", get("labels", stringMap));
  // Read to be checked, but set by the service: a new user is created now, unverified.
  get("created_at", timestamp);
  get("verified", (v, p) => {
    if (typeof v !== "boolean") throw bad(p, `expected true or false, got ${describe(v)}`);
  });
  return input;
}

const ORDER_FIELDS = [
  "id",
  "user_id",
  "status",
  "items",
  "total_cents",
  "placed_at",
  "delivery_window",
  "metadata",
  "card_token",
  "invoice_number",
  "signature",
  "discount_rate",
] as const;

const LINE_ITEM_FIELDS = ["sku", "quantity", "unit_price_cents"] as const;

function lineItem(value: unknown, path: string): NonNullable<OrderInput["items"]>[number] {
  const fields = members(value, path, LINE_ITEM_FIELDS);
  const item: NonNullable<OrderInput["items"]>[number] = {};
  if (fields.has("sku")) item.sku = text(fields.get("sku"), `${path}.sku`);
  if (fields.has("quantity")) item.quantity = uint32(fields.get("quantity"), `${path}.quantity`);
  if (fields.has("unit_price_cents")) {
    item.unit_price_cents = int64(fields.get("unit_price_cents"), `${path}.unit_price_cents`);
  }
  return item;
}

/** POST /v1/orders: the body is the order; none (or null) is undefined. */
export function readOrderInput(body: unknown): OrderInput | undefined {
  if (body === undefined || body === null) return undefined;
  const fields = members(body, "order", ORDER_FIELDS);
  if (fields.has("card_token") && fields.has("invoice_number")) {
    throw bad("payment", "both card_token and invoice_number are set; set at most one");
  }
  const input: OrderInput = {};
  const get = <T>(name: string, read: (value: unknown, path: string) => T): T | undefined =>
    fields.has(name) ? read(fields.get(name), name) : undefined;
  const set = <K extends keyof OrderInput>(name: K, value: OrderInput[K] | undefined) => {
    if (value !== undefined) input[name] = value;
  };
  set("id", get("id", text));
  set("user_id", get("user_id", text));
  set(
    "status",
    get("status", (v, p) => enumValue(v, p, ORDER_STATUSES)),
  );
  set(
    "items",
    get("items", (v, p) => list(v, p, lineItem)),
  );
  set("delivery_window", get("delivery_window", duration));
  set("metadata", get("metadata", struct));
  set("card_token", get("card_token", text));
  set("invoice_number", get("invoice_number", text));
  set("signature", get("signature", bytes));
  set("discount_rate", get("discount_rate", double));
  // Read to be checked, but computed by the service.
  get("total_cents", int64);
  get("placed_at", timestamp);
  return input;
}

/** A query parameter that may be given once; its proto or lowerCamel name. */
function single(query: URLSearchParams, name: string): string | undefined {
  const values = [
    ...query.getAll(name),
    ...(camel(name) === name ? [] : query.getAll(camel(name))),
  ];
  if (values.length > 1) throw bad(name, `given ${values.length} times, but it is not repeated`);
  return values[0];
}

/** GET /v1/regions/:region/users?page_size=&page_token=&tiers=&tiers=&near.city=... */
export function readListQuery(query: URLSearchParams): ListUsersQuery {
  const out: ListUsersQuery = {};
  const size = single(query, "page_size");
  if (size !== undefined) {
    const n = /^[+-]?\d+$/.test(size) ? Number(size) : Number.NaN;
    if (!(n >= -2147483648 && n <= 2147483647)) {
      throw bad("page_size", `expected an integer, got ${describe(size)}`);
    }
    out.page_size = n;
  }
  const token = single(query, "page_token");
  if (token !== undefined) out.page_token = token;
  const tiers = query.getAll("tiers");
  if (tiers.length > 0) out.tiers = tiers.map((tier) => enumValue(tier, "tiers", TIERS));
  const near: AddressInput = {};
  for (const name of ADDRESS_FIELDS) {
    const value = single(query, `near.${name}`);
    if (value !== undefined) near[name] = value;
  }
  if (Object.keys(near).length > 0) out.near = near;
  return out;
}

/** GET /v1/regions/:region/users/:id?fields=display_name,email (snake_case or lowerCamel). */
export function readFieldMask(query: URLSearchParams): string[] {
  const fields = single(query, "fields");
  return fields === undefined || fields === "" ? [] : fields.split(",");
}
