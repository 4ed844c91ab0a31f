/**
 * The legacy services' JSON, printed by hand the way the legacy team wrote it
 * (no protobuf anywhere). It is what the gateway reproduces on the NATS path with
 * the json options of routes.yaml, so a shadow comparison finds nothing:
 *   users  (names: proto, emitDefaults: true): snake_case names, every field,
 *          unset messages (address, created_at, nickname) left out;
 *   orders (names: camel, emitDefaults: false): lowerCamel names, fields at
 *          their default ("", 0, [], first enum value) left out.
 * Both: int64 as decimal strings, enums by name, Timestamp as RFC 3339 in UTC
 * with 0, 3, 6 or 9 fraction digits, Duration as "1.500s", bytes as base64.
 */
import type { ExampleError, ExampleOrder, ExampleUser, JsonValue, UsersPage } from "./data.js";
import { durationOf, timestampOf } from "./messages.js";

/** JSON text; unlike JSON.stringify it keeps a negative zero ("-0"), as ProtoJSON does. */
export function jsonText(value: JsonValue): string {
  if (typeof value === "number") return Object.is(value, -0) ? "-0" : JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(jsonText).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const members = Object.keys(value).map(
      (key) => `${JSON.stringify(key)}:${jsonText(value[key] as JsonValue)}`,
    );
    return `{${members.join(",")}}`;
  }
  return JSON.stringify(value);
}

/** ".5" is printed ".500": 0, 3, 6 or 9 digits. */
function fraction(nanos: number): string {
  if (nanos === 0) return "";
  if (nanos % 1_000_000 === 0) return `.${String(nanos / 1_000_000).padStart(3, "0")}`;
  if (nanos % 1_000 === 0) return `.${String(nanos / 1_000).padStart(6, "0")}`;
  return `.${String(nanos).padStart(9, "0")}`;
}

/** "2021-03-04T06:06:07.1+01:00" -> "2021-03-04T05:06:07.100Z". */
export function timestampText(text: string): string {
  const { seconds, nanos } = timestampOf(text);
  return `${new Date(Number(seconds) * 1000).toISOString().slice(0, 19)}${fraction(nanos)}Z`;
}

/** "172800s" -> "172800s", "1.5s" -> "1.500s", "-0.25s" -> "-0.250s". */
export function durationJson(text: string): string {
  const { seconds, nanos } = durationOf(text);
  const whole = Number(seconds);
  const sign = whole < 0 || nanos < 0 ? "-" : "";
  return `${sign}${Math.abs(whole)}${fraction(Math.abs(nanos))}s`;
}

export interface UserPrintOptions {
  /** A field mask: only these top-level fields; the others print as their defaults. */
  readonly only?: ReadonlySet<string> | undefined;
  /** Printed instead of the stored email (see the deliberate mismatch in legacy-server.ts). */
  readonly email?: string | undefined;
}

/** users.v1.User as the legacy users service prints it. */
export function userObject(user: ExampleUser, options: UserPrintOptions = {}): JsonValue {
  const only = options.only;
  const keep = (field: string) => only === undefined || only.has(field);
  const out: Record<string, JsonValue> = {
    id: keep("id") ? user.id : "",
    region: keep("region") ? user.region : "",
    display_name: keep("display_name") ? user.display_name : "",
    email: keep("email") ? (options.email ?? user.email) : "",
    tier: keep("tier") ? user.tier : "TIER_UNSPECIFIED",
    balance_cents: keep("balance_cents") ? user.balance_cents : "0",
    tags: keep("tags") ? user.tags : [],
  };
  if (keep("address") && user.address !== null) {
    const { street, city, country_code, postal_code } = user.address;
    out.address = { street, city, country_code, postal_code };
  }
  if (keep("created_at")) out.created_at = timestampText(user.created_at);
  if (keep("nickname") && user.nickname !== null) out.nickname = user.nickname;
  out.verified = keep("verified") ? user.verified : false;
  out.labels = keep("labels") ? user.labels : {};
  return out;
}

export function userJson(user: ExampleUser, options: UserPrintOptions = {}): string {
  return jsonText(userObject(user, options));
}

/** users.v1.ListUsersResponse. */
export function usersPageJson(page: UsersPage): string {
  return jsonText({
    users: page.users.map((user) => userObject(user)),
    next_page_token: page.next_page_token,
  });
}

/** users.v1.Error: `{"error": "...", "message": "..."}`, both always printed. */
export function usersErrorJson(error: ExampleError): string {
  return jsonText({ error: error.code, message: error.detail });
}

/** orders.v1.Order as the legacy orders service prints it: defaults left out. */
export function orderJson(order: ExampleOrder): string {
  const out: Record<string, JsonValue> = {};
  if (order.id !== "") out.id = order.id;
  if (order.user_id !== "") out.userId = order.user_id;
  if (order.status !== "ORDER_STATUS_UNSPECIFIED") out.status = order.status;
  if (order.items.length > 0) {
    out.items = order.items.map((item) => {
      const line: Record<string, JsonValue> = {};
      if (item.sku !== "") line.sku = item.sku;
      if (item.quantity !== 0) line.quantity = item.quantity;
      if (item.unit_price_cents !== "0") line.unitPriceCents = item.unit_price_cents;
      return line;
    });
  }
  if (order.total_cents !== "0") out.totalCents = order.total_cents;
  out.placedAt = timestampText(order.placed_at);
  if (order.delivery_window !== null) out.deliveryWindow = durationJson(order.delivery_window);
  // A message field: printed when set, even empty.
  out.metadata = order.metadata;
  // The `payment` oneof: a set member prints even when it is "".
  if (order.card_token !== undefined) out.cardToken = order.card_token;
  if (order.invoice_number !== undefined) out.invoiceNumber = order.invoice_number;
  if (order.signature !== "") out.signature = order.signature;
  if (!Object.is(order.discount_rate, 0)) out.discountRate = order.discount_rate;
  return jsonText(out);
}

/** orders.v1.Error: `{"code": "...", "detail": "..."}`, empty ones left out. */
export function ordersErrorJson(error: ExampleError): string {
  const out: Record<string, JsonValue> = {};
  if (error.code !== "") out.code = error.code;
  if (error.detail !== "") out.detail = error.detail;
  return jsonText(out);
}
