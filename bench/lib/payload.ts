/**
 * The request every scenario sends: one user record, 288 bytes of JSON with
 * snake_case (proto) names, int64 as a string, an enum by name and a Timestamp,
 * so the gateway's JSON -> protobuf path does real work on it.
 */
export const USER_RECORD = {
  id: "u-7f3a9c",
  display_name: "Ada Lovelace",
  email: "ada@example.com",
  tier: "TIER_PRO",
  balance_cents: "1234567",
  tags: ["beta", "early"],
  address: { street: "12 Engine St", city: "London", country_code: "GB", postal_code: "N1 9GU" },
  created_at: "2024-03-01T12:34:56Z",
  verified: true,
} as const;

export const USER_JSON = JSON.stringify(USER_RECORD);

/** The path parameter of the gateway route POST /v1/regions/:region/users. */
export const REGION = "eu-west-1";

/** The NATS subject the bench worker answers (bench/routes.yaml points there). */
export const SUBJECT = "bench.users.create";

/**
 * USER_RECORD as a users.v1.CreateUserRequest object for protobufjs `fromObject`
 * (the raw NATS client sends it without any JSON step).
 */
export function createUserRequestObject(): Record<string, unknown> {
  return {
    region: REGION,
    user: { ...USER_RECORD, created_at: { seconds: 1709296496, nanos: 0 } },
  };
}
