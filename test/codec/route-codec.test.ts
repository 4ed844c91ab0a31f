/** Worker reply -> JSON per the route's options, and undecodable replies as 502. */
import t from "tap";
import { compileRouteCodec } from "../../src/codec/index.js";
import type { JsonOptions } from "../../src/config/types.js";
import { caught, root, type } from "./fixtures/setup.js";

const LEGACY: JsonOptions = { names: "proto", int64: "string", enums: "name", emitDefaults: true };

const usersGet = compileRouteCodec(root, {
  name: "users.get",
  request: "users.v1.GetUserRequest",
  response: "users.v1.User",
  error: "users.v1.Error",
  body: undefined,
  pathParams: ["region", "id"],
  json: LEGACY,
});

const User = type("users.v1.User");

t.test("the route exposes its request, response and error types", async (t) => {
  t.equal(usersGet.requestType.fullName, ".users.v1.GetUserRequest");
  t.equal(usersGet.responseType.fullName, ".users.v1.User");
  t.equal(usersGet.errorType?.fullName, ".users.v1.Error");
});

t.test("decodeResponse prints the reply with the route's json options", async (t) => {
  const bytes = User.encode({
    id: "u1",
    tier: 2,
    balance_cents: "9007199254740993",
    created_at: { seconds: 1714566600, nanos: 5000000 },
    nickname: { value: "" },
  }).finish();
  t.equal(
    usersGet.decodeResponse(bytes),
    '{"id":"u1","region":"","display_name":"","email":"","tier":"TIER_PRO",' +
      '"balance_cents":"9007199254740993","tags":[],"created_at":"2024-05-01T12:30:00.005Z",' +
      '"nickname":"","verified":false,"labels":{}}',
  );
});

t.test(
  "decodeError prints the error body; undefined when the route has no error type",
  async (t) => {
    const bytes = type("users.v1.Error")
      .encode({ error: "not_found", message: "no user u1" })
      .finish();
    t.equal(usersGet.decodeError(bytes), '{"error":"not_found","message":"no user u1"}');
    const noError = compileRouteCodec(root, {
      name: "users.list",
      request: "users.v1.ListUsersRequest",
      response: "users.v1.ListUsersResponse",
      error: undefined,
      body: undefined,
      pathParams: [],
      json: LEGACY,
    });
    t.equal(noError.decodeError(bytes), undefined);
  },
);

t.test("an empty reply is the empty message, not an error", async (t) => {
  t.match(usersGet.decodeResponse(new Uint8Array(0)), /^\{"id":"","region":""/);
});

t.test(
  "truncated bytes are TURNOUT_ERR_BAD_REPLY (502) with protobufjs's reason kept",
  async (t) => {
    const good = User.encode({ id: "u1", display_name: "Ada" }).finish();
    const error = caught(() => usersGet.decodeResponse(good.subarray(0, good.length - 2)));
    t.equal(error.code, "TURNOUT_ERR_BAD_REPLY");
    t.equal(error.status, 502);
    t.match(error.message, /reply is not a valid users\.v1\.User: index out of range/);
    t.ok(error.cause instanceof Error, "cause kept");
  },
);

t.test("a known field with the wrong wire type is TURNOUT_ERR_BAD_REPLY", async (t) => {
  // Field 6 (balance_cents, a varint) sent as length-delimited: a reply of another type.
  const error = caught(() => usersGet.decodeResponse(new Uint8Array([0x32, 0x01, 0x41])));
  t.equal(error.code, "TURNOUT_ERR_BAD_REPLY");
  t.match(error.message, /field balance_cents \(number 6\) has wire type 2/);
  // Same inside a nested message: address (8) -> street (1) sent as a varint.
  const nested = caught(() => usersGet.decodeResponse(new Uint8Array([0x42, 0x02, 0x08, 0x01])));
  t.match(nested.message, /field street \(number 1\) has wire type 0/);
});

const wellKnown = compileRouteCodec(root, {
  name: "wkt",
  request: "codectest.v1.WellKnown",
  response: "codectest.v1.WellKnown",
  error: undefined,
  body: "*",
  pathParams: [],
  json: LEGACY,
});
const hex = (text: string) => new Uint8Array(Buffer.from(text.replace(/ /g, ""), "hex"));
/** WellKnown.payload (16) = an Any of `url` holding `value`. */
const anyReply = (url: string, value: string) => {
  const any = type("google.protobuf.Any")
    .encode({ type_url: url, value: hex(value) })
    .finish();
  return new Uint8Array([0x82, 0x01, any.length, ...any]);
};

t.test(
  "a well-known type's field with the wrong wire type is TURNOUT_ERR_BAD_REPLY, not its default",
  async (t) => {
    const cases: Array<[string, string, RegExp]> = [
      ["52 02 08 05", "StringValue value as a varint", /field value \(number 1\) has wire type 0/],
      ["3a 03 0a 01 41", "Int32Value value as bytes", /field value \(number 1\) has wire type 2/],
      [
        "0a 03 0a 01 41",
        "Timestamp seconds as bytes",
        /field seconds \(number 1\) has wire type 2/,
      ],
      ["12 03 12 01 41", "Duration nanos as bytes", /field nanos \(number 2\) has wire type 2/],
      ["7a 02 08 01", "FieldMask paths as a varint", /field paths \(number 1\) has wire type 0/],
      ["6a 02 18 01", "Value string_value as a varint", /\(number 3\) has wire type 0/],
      ["72 02 08 01", "ListValue values as a varint", /field values \(number 1\) has wire type 0/],
      // meta (12) = Struct{fields{"a": Value{number_value as a varint}}}
      ["62 09 0a 07 0a 01 61 12 02 10 01", "a Value in a Struct", /\(number 2\) has wire type 0/],
      ["8201 02 08 01", "Any type_url as a varint", /\(number 1\) has wire type 0/],
    ];
    for (const [bytes, what, detail] of cases) {
      const error = caught(() => wellKnown.decodeResponse(hex(bytes)));
      t.equal(error.code, "TURNOUT_ERR_BAD_REPLY", what);
      t.match(error.message, detail, what);
    }
    t.equal(
      wellKnown.decodeResponse(hex("0a 04 08 01 28 01")),
      wellKnown.decodeResponse(hex("0a 02 08 01")),
      "an unknown field number in a Timestamp is still skipped",
    );
  },
);

t.test(
  "a field with the wrong wire type in an Any's message is TURNOUT_ERR_BAD_REPLY, not left out",
  async (t) => {
    const inner = caught(() =>
      wellKnown.decodeResponse(anyReply("type.googleapis.com/codectest.v1.Inner", "08 01")),
    );
    t.equal(inner.code, "TURNOUT_ERR_BAD_REPLY");
    t.match(inner.message, /field name \(number 1\) has wire type 0/);
    const wrapper = caught(() =>
      wellKnown.decodeResponse(
        anyReply("type.googleapis.com/google.protobuf.StringValue", "08 01"),
      ),
    );
    t.match(wrapper.message, /field value \(number 1\) has wire type 0/);
    t.match(
      wellKnown.decodeResponse(
        anyReply("type.googleapis.com/codectest.v1.Inner", "0a 01 41 f8 06 01"),
      ),
      /"payload":\{"@type":"type.googleapis.com\/codectest.v1.Inner","name":"A","count":0\}/,
      "a good one prints, an unknown field number skipped",
    );
  },
);

t.test("unknown field numbers in a reply are skipped (forward compatible)", async (t) => {
  const good = User.encode({ id: "u1" }).finish();
  const withUnknown = new Uint8Array([...good, 0xf8, 0x06, 0x01]); // field 111, varint 1
  t.equal(usersGet.decodeResponse(withUnknown), usersGet.decodeResponse(good));
});

t.test("invalid UTF-8 in a string field is TURNOUT_ERR_BAD_REPLY", async (t) => {
  const error = caught(() => usersGet.decodeResponse(new Uint8Array([0x0a, 0x02, 0xc3, 0x28])));
  t.equal(error.code, "TURNOUT_ERR_BAD_REPLY");
});

t.test("a Timestamp out of range in a reply is TURNOUT_ERR_BAD_REPLY", async (t) => {
  const bytes = User.encode({ created_at: { seconds: "253402300800", nanos: 0 } }).finish();
  const error = caught(() => usersGet.decodeResponse(bytes));
  t.equal(error.code, "TURNOUT_ERR_BAD_REPLY");
  t.match(error.message, /Timestamp out of range/);
  const nanos = User.encode({ created_at: { seconds: 0, nanos: -1 } }).finish();
  t.match(caught(() => usersGet.decodeResponse(nanos)).message, /Timestamp out of range/);
});

t.test(
  "a Duration whose seconds and nanos disagree in sign is TURNOUT_ERR_BAD_REPLY",
  async (t) => {
    const orders = compileRouteCodec(root, {
      name: "orders.get",
      request: "orders.v1.GetOrderRequest",
      response: "orders.v1.Order",
      error: undefined,
      body: undefined,
      pathParams: ["id"],
      json: LEGACY,
    });
    const bytes = type("orders.v1.Order")
      .encode({ delivery_window: { seconds: 1, nanos: -5 } })
      .finish();
    t.match(caught(() => orders.decodeResponse(bytes)).message, /Duration out of range/);
  },
);

t.test("encodeRequest produces the bytes the worker decodes", async (t) => {
  const bytes = usersGet.encodeRequest({ region: "eu", id: "u1" }, {}, undefined);
  t.same(usersGet.requestType.toObject(usersGet.requestType.decode(bytes)), {
    region: "eu",
    id: "u1",
  });
});

t.test(
  "a body nested past protobuf's limit is a 400, not a 500 that trips the breaker",
  async (t) => {
    const nested = (levels: number) =>
      JSON.parse(`{"list":${"[".repeat(levels)}${"]".repeat(levels)}}`);
    t.ok(wellKnown.encodeRequest({}, {}, nested(20)).length > 0, "20 levels are fine");
    // 60 lists are 120 messages (ListValue, Value) for protobufjs's encoder; 20000
    // overflow the JS stack while reading.
    for (const levels of [60, 20_000]) {
      const error = caught(() => wellKnown.encodeRequest({}, {}, nested(levels)));
      t.equal(error.code, "TURNOUT_ERR_BAD_JSON", `${levels} levels`);
      t.equal(error.status, 400);
      t.match(error.message, /nests messages too deeply/);
    }
  },
);
