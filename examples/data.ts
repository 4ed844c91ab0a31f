/**
 * The example company's data, shared by the example NATS worker and the example
 * legacy HTTP service so that both sides answer the same requests the same way.
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
