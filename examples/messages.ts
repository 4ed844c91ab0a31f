/**
 * Between the example's plain records (data.ts: int64 as decimal strings, RFC 3339
 * times, JSON metadata) and protobufjs messages. The worker builds its answers with
 * `Type.fromObject` (the kit verifies them, and verify refuses int64 given as
 * strings) and reads requests through `Type.toObject` with the options below.
 * The protos are loaded with keepCase: field names are snake_case as in the .proto.
 */
import type protobuf from "protobufjs";
import type { ExampleOrder, ExampleUser, JsonValue } from "./data.js";

/** How the worker reads decoded requests: int64 as decimal strings, enums by name, bytes as base64. */
export const PLAIN: protobuf.IConversionOptions = {
  longs: String,
  enums: String,
  bytes: String,
};

export interface SecondsNanos {
  seconds: string;
  nanos: number;
}

const RFC3339 = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/i;

/** "2021-03-04T05:06:07.123Z" -> {seconds, nanos}, exact to the nanosecond. */
export function timestampOf(text: string): SecondsNanos {
  const match = RFC3339.exec(text);
  const millis = match === null ? Number.NaN : Date.parse(`${match[1]}${match[3]}`);
  if (match === null || Number.isNaN(millis)) throw new RangeError(`not an RFC 3339 time: ${text}`);
  return { seconds: String(millis / 1000), nanos: Number((match[2] ?? "").padEnd(9, "0")) };
}

const DURATION = /^(-?)(\d+)(?:\.(\d{1,9}))?s$/;

/** A ProtoJSON duration ("172800s", "1.5s") -> {seconds, nanos}. */
export function durationOf(text: string): SecondsNanos {
  const match = DURATION.exec(text);
  if (match === null) throw new RangeError(`not a duration: ${text}`);
  const sign = match[1] === "-" ? -1 : 1;
  const nanos = Number((match[3] ?? "").padEnd(9, "0"));
  return { seconds: `${match[1]}${match[2]}`, nanos: nanos === 0 ? 0 : sign * nanos };
}

export function durationText(d: Partial<SecondsNanos>): string {
  const seconds = d.seconds ?? "0";
  const nanos = Math.abs(d.nanos ?? 0);
  const sign = (d.nanos ?? 0) < 0 && !seconds.startsWith("-") ? "-" : "";
  if (nanos === 0) return `${sign}${seconds}s`;
  return `${sign}${seconds}.${String(nanos).padStart(9, "0").replace(/0+$/, "")}s`;
}

/** google.protobuf.Value as protobufjs objects hold it (its field names are lowerCamel). */
export interface ValueObject {
  nullValue?: string | number;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: StructObject;
  listValue?: { values?: ValueObject[] };
}

export interface StructObject {
  fields?: Record<string, ValueObject>;
}

export function structOf(json: Record<string, JsonValue>): StructObject {
  return {
    fields: Object.fromEntries(
      Object.entries(json).map(([key, value]) => [key, protoValueOf(value)]),
    ),
  };
}

function protoValueOf(json: JsonValue): ValueObject {
  if (json === null) return { nullValue: "NULL_VALUE" };
  if (typeof json === "number") return { numberValue: json };
  if (typeof json === "string") return { stringValue: json };
  if (typeof json === "boolean") return { boolValue: json };
  if (Array.isArray(json)) return { listValue: { values: json.map(protoValueOf) } };
  return { structValue: structOf(json) };
}

export function jsonOfStruct(struct: StructObject | undefined): Record<string, JsonValue> {
  const fields = struct?.fields ?? {};
  return Object.fromEntries(Object.entries(fields).map(([key, value]) => [key, jsonOf(value)]));
}

function jsonOf(value: ValueObject): JsonValue {
  if (value.numberValue !== undefined) return value.numberValue;
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.structValue !== undefined) return jsonOfStruct(value.structValue);
  if (value.listValue !== undefined) return (value.listValue.values ?? []).map(jsonOf);
  return null;
}

/** A users.v1.User message for `user`. */
export function userMessage(User: protobuf.Type, user: ExampleUser): protobuf.Message {
  return User.fromObject({
    id: user.id,
    region: user.region,
    display_name: user.display_name,
    email: user.email,
    tier: user.tier,
    balance_cents: user.balance_cents,
    tags: user.tags,
    ...(user.address === null ? {} : { address: user.address }),
    created_at: timestampOf(user.created_at),
    ...(user.nickname === null ? {} : { nickname: { value: user.nickname } }),
    verified: user.verified,
    labels: user.labels,
  });
}

/** An orders.v1.Order message for `order`. */
export function orderMessage(Order: protobuf.Type, order: ExampleOrder): protobuf.Message {
  return Order.fromObject({
    id: order.id,
    user_id: order.user_id,
    status: order.status,
    items: order.items,
    total_cents: order.total_cents,
    placed_at: timestampOf(order.placed_at),
    ...(order.delivery_window === null
      ? {}
      : { delivery_window: durationOf(order.delivery_window) }),
    metadata: structOf(order.metadata),
    ...(order.card_token === undefined ? {} : { card_token: order.card_token }),
    ...(order.invoice_number === undefined ? {} : { invoice_number: order.invoice_number }),
    signature: order.signature,
    discount_rate: order.discount_rate,
  });
}
