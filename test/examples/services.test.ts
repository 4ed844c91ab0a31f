/**
 * The example worker's handlers, called as the worker kit calls them: a decoded
 * request message in, a message that passes `verify` out (or a ServiceError).
 */
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type protobuf from "protobufjs";
import t from "tap";
import {
  durationOf,
  durationText,
  jsonOfStruct,
  structOf,
  timestampOf,
} from "../../examples/messages.js";
import { type Endpoint, ExampleServices, totalCents } from "../../examples/services.js";
import { loadProtos } from "../../src/codec/protos.js";
import { ServiceError, type WorkerContext } from "../../src/worker/index.js";

const root = loadProtos([join(resolve(fileURLToPath(import.meta.url), "../../.."), "proto")]);
const PLAIN = { longs: String, enums: String, bytes: String };
const NOW = new Date("2025-01-02T03:04:05.678Z");

function services(): { call: Caller; services: ExampleServices } {
  const s = new ExampleServices(root, { now: () => NOW });
  const bySubject = new Map(s.endpoints().map((e) => [e.subject, e]));
  return {
    call: (subject, request) => call(bySubject.get(subject)!, subject, request),
    services: s,
  };
}

type Caller = (subject: string, request: object) => Answer;

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

/** Like the kit: decode the request bytes, handle, verify and encode the answer. */
function call(endpoint: Endpoint, subject: string, request: object): Answer {
  const requestType = root.lookupType(endpoint.requestType);
  const decoded = requestType.decode(requestType.encode(requestType.fromObject(request)).finish());
  const ctx: WorkerContext = {
    subject: subject.replace("*", "eu-west"),
    headers: undefined,
    requestId: "r-1",
    route: undefined,
    httpStatus: undefined,
  };
  try {
    const response: protobuf.Message = endpoint.handle(decoded, ctx);
    const responseType = root.lookupType(endpoint.responseType);
    const invalid = responseType.verify(response);
    if (invalid !== null) throw new Error(`invalid ${endpoint.responseType}: ${invalid}`);
    const bytes = responseType.encode(response).finish();
    return {
      status: ctx.httpStatus ?? 200,
      body: responseType.toObject(responseType.decode(bytes), PLAIN),
    };
  } catch (error) {
    if (!(error instanceof ServiceError)) throw error;
    const errorType = root.lookupType(endpoint.errorType);
    const bytes = errorType.encode(error.body ?? {}).finish();
    return { status: error.code, body: errorType.toObject(errorType.decode(bytes), PLAIN) };
  }
}

t.test("users.get answers the seeded user, int64 past 2^53 and times exact", async (t) => {
  const { call } = services();
  const answer = call("svc.users.*.get", { region: "eu-west", id: "u-1001" });
  t.equal(answer.status, 200);
  t.match(answer.body, {
    id: "u-1001",
    display_name: "Ada Lovelace",
    tier: "TIER_PRO",
    balance_cents: "9007199254740993",
    created_at: { seconds: String(Date.parse("2021-03-04T05:06:07Z") / 1000), nanos: 123000000 },
    nickname: { value: "ada" },
    address: { country_code: "GB" },
  });
});

t.test("users.get of an unknown id is a 404 with the legacy error body", async (t) => {
  const { call } = services();
  t.same(call("svc.users.*.get", { region: "eu-west", id: "u-9" }), {
    status: 404,
    body: { error: "not_found", message: "no user u-9 in eu-west" },
  });
  const elsewhere = call("svc.users.*.get", { region: "us-east", id: "u-1001" });
  t.same(elsewhere.body, { error: "not_found", message: "no user u-1001 in us-east" });
});

t.test("users.get with a field mask returns only those fields", async (t) => {
  const { call } = services();
  const answer = call("svc.users.*.get", {
    region: "eu-west",
    id: "u-1001",
    fields: { paths: ["display_name", "email"] },
  });
  t.same(answer.body, { display_name: "Ada Lovelace", email: "ada@example.com" });
  const bad = call("svc.users.*.get", {
    region: "eu-west",
    id: "u-1001",
    fields: { paths: ["x"] },
  });
  t.equal(bad.status, 400);
});

t.test("users.list filters by tier and pages with opaque tokens", async (t) => {
  const { call } = services();
  const first = call("svc.users.*.list", { region: "eu-west", page_size: 1 });
  t.equal((first.body.users as unknown[]).length, 1);
  t.match(first.body, { users: [{ id: "u-1001" }] });
  const token = first.body.next_page_token as string;
  t.ok(token, "a next page");
  const second = call("svc.users.*.list", { region: "eu-west", page_size: 1, page_token: token });
  t.match(second.body, { users: [{ id: "u-1002" }] });
  t.notOk(second.body.next_page_token, "no page after the last");

  const pro = call("svc.users.*.list", { region: "eu-west", tiers: ["TIER_ENTERPRISE"] });
  t.match(pro.body, { users: [{ id: "u-1002" }] });
  t.equal((pro.body.users as unknown[]).length, 1);
  const gb = call("svc.users.*.list", { region: "eu-west", near: { country_code: "gb" } });
  t.equal((gb.body.users as unknown[]).length, 1);
  const badToken = call("svc.users.*.list", { region: "eu-west", page_token: "garbage" });
  t.equal(badToken.status, 400);
  t.equal(badToken.body.error, "invalid_argument");
});

t.test("users.create stores the user and answers 201; then it can be read", async (t) => {
  const { call } = services();
  const created = call("svc.users.*.create", {
    region: "eu-west",
    user: { display_name: "Alan Turing", email: "alan@example.com", balance_cents: "12" },
  });
  t.equal(created.status, 201);
  t.match(created.body, {
    id: "u-2001",
    region: "eu-west",
    tier: "TIER_FREE",
    balance_cents: "12",
    created_at: timestampOf(NOW.toISOString()),
  });
  const read = call("svc.users.*.get", { region: "eu-west", id: "u-2001" });
  t.equal(read.body.display_name, "Alan Turing");

  const again = call("svc.users.*.create", {
    region: "eu-west",
    user: { id: "u-2001", display_name: "Alan", email: "a@example.com" },
  });
  t.same(again, {
    status: 409,
    body: { error: "already_exists", message: "user u-2001 already exists in eu-west" },
  });
  const invalid = call("svc.users.*.create", { region: "eu-west", user: { email: "nope" } });
  t.equal(invalid.status, 400);
  t.match(invalid.body.message, /display_name: required; email: not an email address/);
});

t.test("orders.get and orders.create, with orders.v1.Error bodies", async (t) => {
  const { call } = services();
  const order = call("svc.orders.get", { id: "o-5001" });
  t.match(order.body, {
    id: "o-5001",
    status: "PAID",
    total_cents: "4987",
    card_token: "tok_visa_4242",
    delivery_window: { seconds: "172800" },
    signature: "c2lnbmVkLWJ5LWxlZ2FjeQ==",
  });
  t.match(call("svc.orders.get", { id: "o-5002" }).body, {
    invoice_number: "INV-2024-0042",
    total_cents: "9007199254740993",
  });
  t.same(call("svc.orders.get", { id: "o-1" }), {
    status: 404,
    body: { code: "not_found", detail: "no order o-1" },
  });

  const created = call("svc.orders.create", {
    order: {
      user_id: "u-1002",
      items: [{ sku: "X", quantity: 3, unit_price_cents: "9007199254740993" }],
      discount_rate: 0.1,
      metadata: { fields: { channel: { stringValue: "test" } } },
    },
  });
  t.equal(created.status, 201);
  t.match(created.body, {
    id: "o-6001",
    status: "PENDING",
    total_cents: "24319437987800681",
    metadata: { fields: { channel: { stringValue: "test" } } },
  });
  t.equal(call("svc.orders.get", { id: "o-6001" }).status, 200);

  const bad = call("svc.orders.create", { order: { user_id: "u-404" } });
  t.equal(bad.status, 400);
  t.same(bad.body, {
    code: "invalid_argument",
    detail: "user_id: no user u-404; items: at least one line item is required",
  });
});

t.test("totalCents is exact past 2^53", async (t) => {
  t.equal(
    totalCents([{ sku: "a", quantity: 2, unit_price_cents: "9007199254740993" }], 0),
    "18014398509481986",
  );
  t.equal(totalCents([{ sku: "a", quantity: 1, unit_price_cents: "5250" }], 0.05), "4987");
});

t.test("the conversions between the example's records and messages", async (t) => {
  t.same(timestampOf("2021-03-04T05:06:07.123456789+01:00"), {
    seconds: String(Date.parse("2021-03-04T04:06:07Z") / 1000),
    nanos: 123456789,
  });
  t.throws(() => timestampOf("yesterday"), RangeError);
  t.same(durationOf("-1.5s"), { seconds: "-1", nanos: -500000000 });
  t.equal(durationText(durationOf("-1.5s")), "-1.5s");
  t.equal(durationText({ seconds: "0", nanos: -250000000 }), "-0.25s");
  t.equal(durationText({ seconds: "172800" }), "172800s");
  const json = { a: 1, b: "x", c: [true, null], d: { e: [] } };
  t.same(jsonOfStruct(structOf(json)), json);
});

t.test(
  "the example worker runs two services, users and orders, each with its own endpoints",
  async (t) => {
    const grouped = new ExampleServices(root).services().map(({ service, endpoints }) => ({
      name: service.name,
      subjects: endpoints.map((endpoint) => endpoint.subject),
    }));
    t.same(grouped, [
      {
        name: "example-users",
        subjects: ["svc.users.*.get", "svc.users.*.list", "svc.users.*.create"],
      },
      { name: "example-orders", subjects: ["svc.orders.get", "svc.orders.create"] },
    ]);
  },
);
