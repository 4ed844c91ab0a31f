/** The well-known types: their JSON forms in and out, and their 400s. */
import t, { type Test } from "tap";
import { parseJsonBody } from "../../src/codec/index.js";
import { badField, CANONICAL, caught, codec, roundTrip } from "./fixtures/setup.js";

const W = "codectest.v1.WellKnown";

function rejects(t: Test, json: string, field: string, detail: RegExp): void {
  const error = badField(W, json);
  t.equal(error.code, "TURNOUT_ERR_BAD_FIELD", json);
  t.equal(error.field, field, `${json}: field`);
  t.match(error.message, detail, `${json}: ${error.message}`);
}

t.test("Timestamp round trips in UTC with 0, 3, 6 or 9 fraction digits", async (t) => {
  const cases: Array<[string, string]> = [
    ["1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"],
    ["2024-05-01T12:30:00.1Z", "2024-05-01T12:30:00.100Z"],
    ["2024-05-01T12:30:00.000Z", "2024-05-01T12:30:00Z"],
    ["2024-05-01T12:30:00.1234Z", "2024-05-01T12:30:00.123400Z"],
    ["2024-05-01T12:30:00.123456789Z", "2024-05-01T12:30:00.123456789Z"],
    ["2024-05-01T12:30:00.000000001Z", "2024-05-01T12:30:00.000000001Z"],
    ["2024-05-01T12:30:00+02:00", "2024-05-01T10:30:00Z"],
    ["2024-05-01T00:10:00-05:30", "2024-05-01T05:40:00Z"],
    ["2024-02-29T23:59:59Z", "2024-02-29T23:59:59Z"],
    ["1969-12-31T23:59:59.5Z", "1969-12-31T23:59:59.500Z"],
    ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"],
    ["9999-12-31T23:59:59.999999999Z", "9999-12-31T23:59:59.999999999Z"],
  ];
  for (const [input, output] of cases) {
    t.equal(roundTrip(W, JSON.stringify({ at: input })), JSON.stringify({ at: output }), input);
  }
});

t.test("a bad Timestamp is a 400 naming the field", async (t) => {
  for (const text of [
    "2024-05-01T12:30:00",
    "2024-05-01 12:30:00Z",
    "2024-05-01t12:30:00z",
    "2024-5-01T12:30:00Z",
    "2024-05-01T12:30:00.Z",
    "2024-05-01T12:30:00.1234567891Z",
    "2024-05-01T12:30:00+0200",
    "2024-05-01T12:30:00Z ",
    "yesterday",
  ]) {
    rejects(t, JSON.stringify({ at: text }), "$.at", /invalid Timestamp .*expected RFC 3339/);
  }
  for (const text of [
    "2023-02-29T00:00:00Z",
    "2024-04-31T00:00:00Z",
    "2024-05-01T24:00:00Z",
    "2024-05-01T12:60:00Z",
    "2024-05-01T12:30:60Z",
    "2024-13-01T00:00:00Z",
  ]) {
    rejects(t, JSON.stringify({ at: text }), "$.at", /no such date or time/);
  }
  rejects(t, '{"at":"0000-12-31T23:59:59Z"}', "$.at", /Timestamp out of range/);
  rejects(t, '{"at":"0001-01-01T00:00:00+01:00"}', "$.at", /Timestamp out of range/);
  rejects(t, '{"at":1714566600}', "$.at", /expected Timestamp as a string/);
  rejects(t, '{"times":["2024-05-01T12:30:00Z","x"]}', "$.times[1]", /invalid Timestamp "x"/);
});

t.test("Duration round trips as seconds with 0, 3, 6 or 9 fraction digits", async (t) => {
  const cases: Array<[string, string]> = [
    ["1.5s", "1.500s"],
    ["0s", "0s"],
    ["-0.5s", "-0.500s"],
    ["-1.000001s", "-1.000001s"],
    ["0.000000001s", "0.000000001s"],
    ["315576000000s", "315576000000s"],
    ["-315576000000.999999999s", "-315576000000.999999999s"],
    ["3s", "3s"],
  ];
  for (const [input, output] of cases) {
    t.equal(roundTrip(W, JSON.stringify({ took: input })), JSON.stringify({ took: output }), input);
  }
});

t.test("a bad Duration is a 400 naming the field", async (t) => {
  for (const text of ["1m", "1.5", "+1s", "s", "-s", "1 s", "1.0000000001s", "1e3s", ""]) {
    rejects(t, JSON.stringify({ took: text }), "$.took", /invalid Duration/);
  }
  rejects(t, '{"took":"315576000001s"}', "$.took", /Duration out of range/);
  rejects(t, '{"took":1.5}', "$.took", /expected Duration as a string/);
});

t.test("wrappers are their bare value; an explicit default is kept (presence)", async (t) => {
  const json =
    '{"dbl":1.5,"flt":0.1,"i64":"9007199254740993","u64":"18446744073709551615","i32":-1,' +
    '"u32":4294967295,"flag":false,"text":"","data":"AQI="}';
  t.equal(roundTrip(W, json), json);
  t.equal(roundTrip(W, '{"i32":0,"flag":true,"text":"x"}'), '{"i32":0,"flag":true,"text":"x"}');
  t.equal(
    roundTrip(W, '{"i64":"7","u64":"8"}', { ...CANONICAL, int64: "number" }),
    '{"i64":7,"u64":8}',
    "Int64Value follows the int64 option",
  );
  t.equal(roundTrip(W, '{"i32":null,"text":null}'), "{}", "null leaves a wrapper unset");
  // Its empty bytes come back as protobufjs's shared empty array, not a Uint8Array (was a 500).
  t.equal(roundTrip(W, '{"data":""}'), '{"data":""}', "an empty BytesValue");
});

t.test("a wrapper's value is checked like its scalar", async (t) => {
  rejects(t, '{"i32":"x"}', "$.i32", /invalid int32 value: "x"/);
  rejects(t, '{"u32":-1}', "$.u32", /uint32 value out of range/);
  rejects(t, '{"flag":"true"}', "$.flag", /expected bool/);
  rejects(t, '{"i32":{"value":1}}', "$.i32", /expected int32/);
  rejects(t, '{"data":"%%"}', "$.data", /invalid base64/);
});

t.test("Struct, Value and ListValue round trip as plain JSON", async (t) => {
  const json =
    '{"meta":{"a":1,"b":[true,null,"s",{"c":{}}],"d":null,"e":-2.5},"anyValue":{"x":[[]]},' +
    '"list":[1,"a",null,false,{"k":"v"}]}';
  t.equal(roundTrip(W, json), json);
  t.equal(roundTrip(W, '{"anyValue":"text"}'), '{"anyValue":"text"}');
  t.equal(roundTrip(W, '{"anyValue":0}'), '{"anyValue":0}');
  t.equal(roundTrip(W, '{"meta":{}}'), '{"meta":{}}', "an empty Struct is set, so it prints");
  t.equal(roundTrip(W, '{"list":[]}'), '{"list":[]}');
});

t.test("null is a Value (null_value), also inside repeated and map Values", async (t) => {
  t.equal(roundTrip(W, '{"anyValue":null}'), '{"anyValue":null}');
  t.equal(roundTrip(W, '{"values":[null,1]}'), '{"values":[null,1]}');
  t.equal(roundTrip(W, '{"valueMap":{"a":null}}'), '{"valueMap":{"a":null}}');
});

t.test("NullValue fields take null and print null when defaults are emitted", async (t) => {
  t.equal(roundTrip(W, '{"nullOnly":null}'), "{}", "null_value is the default");
  t.match(
    roundTrip(W, '{"nullOnly":"NULL_VALUE"}', { ...CANONICAL, emitDefaults: true }),
    /"nullOnly":null/,
  );
});

t.test("a Struct key must be valid and a Value must be JSON", async (t) => {
  rejects(t, '{"meta":[1]}', "$.meta", /expected Struct as an object/);
  rejects(t, '{"list":{"a":1}}', "$.list", /expected ListValue as an array/);
  rejects(
    t,
    '{"meta":{"a":{"b":[1,1e999]}}}',
    "$.meta.a.b[1]",
    /not a JSON value for google\.protobuf\.Value/,
  );
});

t.test("FieldMask: lowerCamel paths in, snake_case paths inside, lowerCamel out", async (t) => {
  const c = codec(W);
  t.same(c.fromJson({ mask: "a.b,cD,fooBar.bazQux" }, "$"), {
    mask: { paths: ["a.b", "c_d", "foo_bar.baz_qux"] },
  });
  t.equal(roundTrip(W, '{"mask":"a.b,cD,fooBar.bazQux"}'), '{"mask":"a.b,cD,fooBar.bazQux"}');
  t.equal(roundTrip(W, '{"mask":""}'), '{"mask":""}', "an empty mask is still set");
});

t.test("a FieldMask path with no lowerCamel form that reads back is a bad reply", async (t) => {
  const c = codec(W);
  const print = (paths: string[]) =>
    c.toJson(c.type.decode(c.type.encode({ mask: { paths } }).finish()), CANONICAL);
  t.equal(print(["foo_bar", "a.b_c"]), '{"mask":"fooBar,a.bC"}');
  for (const path of ["foo__bar", "_foo", "fooBar", "foo_3_bar", "a,b"]) {
    const error = caught(() => print([path]));
    t.equal(error.code, "TURNOUT_ERR_BAD_REPLY", path);
    t.match(error.message, /has no lowerCamel form that reads back/);
  }
});

t.test("a bad FieldMask is a 400", async (t) => {
  rejects(t, '{"mask":"foo_bar"}', "$.mask", /invalid FieldMask path "foo_bar"/);
  rejects(t, '{"mask":"a,,b"}', "$.mask", /invalid FieldMask path ""/);
  rejects(t, '{"mask":["a"]}', "$.mask", /expected FieldMask as a string/);
});

t.test("Any: @type plus the message's fields, or plus value for special types", async (t) => {
  const inner =
    '{"payload":{"@type":"type.googleapis.com/codectest.v1.Inner","name":"x","count":2}}';
  t.equal(roundTrip(W, inner), inner);
  t.equal(
    roundTrip(
      W,
      '{"payload":{"@type":"type.googleapis.com/google.protobuf.Duration","value":"1.5s"}}',
    ),
    '{"payload":{"@type":"type.googleapis.com/google.protobuf.Duration","value":"1.500s"}}',
  );
  t.equal(
    roundTrip(W, '{"payload":{"@type":"type.googleapis.com/codectest.v1.Inner"}}'),
    '{"payload":{"@type":"type.googleapis.com/codectest.v1.Inner"}}',
  );
  t.equal(
    roundTrip(W, '{"payload":{"@type":"x/codectest.v1.Inner","name":"a"}}', {
      ...CANONICAL,
      names: "proto",
      emitDefaults: true,
    }).includes('"payload":{"@type":"x/codectest.v1.Inner","name":"a","count":0}'),
    true,
    "the embedded message follows the options",
  );
});

t.test(
  "Any of Empty takes and prints value {} as Go's protojson does; value may be left out",
  async (t) => {
    const empty = '{"payload":{"@type":"type.googleapis.com/google.protobuf.Empty","value":{}}}';
    t.equal(roundTrip(W, empty), empty);
    t.equal(
      roundTrip(W, '{"payload":{"@type":"type.googleapis.com/google.protobuf.Empty"}}'),
      empty,
    );
    rejects(
      t,
      '{"payload":{"@type":"type.googleapis.com/google.protobuf.Empty","value":{"a":1}}}',
      "$.payload.value.a",
      /unknown field "a" in google\.protobuf\.Empty/,
    );
  },
);

t.test("a bad Any is a 400 naming the problem", async (t) => {
  rejects(t, '{"payload":{"name":"x"}}', "$.payload", /Any needs a "@type" string/);
  rejects(
    t,
    '{"payload":{"@type":"type.googleapis.com/no.Such"}}',
    "$.payload",
    /unknown type in "@type"/,
  );
  rejects(
    t,
    '{"payload":{"@type":"type.googleapis.com/codectest.v1.Inner","nme":"x"}}',
    "$.payload.nme",
    /unknown field "nme" in codectest\.v1\.Inner/,
  );
  rejects(
    t,
    '{"payload":{"@type":"type.googleapis.com/google.protobuf.Duration","value":"1m"}}',
    "$.payload.value",
    /invalid Duration/,
  );
  rejects(
    t,
    '{"payload":{"@type":"type.googleapis.com/google.protobuf.Duration","value":"1s","x":1}}',
    "$.payload.x",
    /unknown field "x" in Any/,
  );
});

t.test(
  "an Any's @type with a lone surrogate is a 400 naming @type, as in a string field",
  async (t) => {
    rejects(
      t,
      '{"payload":{"@type":"x\\ud800/codectest.v1.Inner"}}',
      '$.payload["@type"]',
      /lone UTF-16 surrogate/,
    );
    rejects(
      t,
      '{"payload":{"@type":"type.googleapis.com/codectest.v1.Inner\\udc00","name":"a"}}',
      '$.payload["@type"]',
      /lone UTF-16 surrogate/,
    );
  },
);

t.test("an Any's @type must end in the fully-qualified name, not a relative one", async (t) => {
  for (const url of ["type.googleapis.com/Inner", "x/v1.Inner", "x/.codectest.v1.Inner"]) {
    rejects(t, `{"payload":{"@type":"${url}"}}`, "$.payload", /unknown type in "@type"/);
  }
  t.equal(
    roundTrip(W, '{"payload":{"@type":"codectest.v1.Inner","name":"n"}}'),
    '{"payload":{"@type":"codectest.v1.Inner","name":"n"}}',
    "a full name without a host is still a name",
  );
});

t.test("Empty is an object with no fields", async (t) => {
  t.equal(roundTrip(W, '{"nothing":{}}'), '{"nothing":{}}');
  rejects(t, '{"nothing":{"a":1}}', "$.nothing.a", /unknown field "a" in google\.protobuf\.Empty/);
});

t.test("a well-known type can be the top-level message of a codec", async (t) => {
  const ts = codec("google.protobuf.Timestamp");
  const bytes = ts.type.encode(ts.fromJson("2024-05-01T12:30:00Z", "$")).finish();
  t.equal(ts.toJson(ts.type.decode(bytes), CANONICAL), '"2024-05-01T12:30:00Z"');
});

t.test(
  "Anys nested past protobuf's 100 message levels are a 400, as other messages are",
  async (t) => {
    const nested = (levels: number) =>
      `{"payload":${'{"@type":"type.googleapis.com/google.protobuf.Any","value":'.repeat(levels)}{}${"}".repeat(levels)}}`;
    t.ok(codec(W).fromJson(parseJsonBody(nested(40)), "$"), "40 Anys in one another");
    const error = badField(W, nested(60));
    t.equal(error.code, "TURNOUT_ERR_BAD_FIELD");
    t.match(error.message, /Any nests too deeply \(protobuf's limit is 100 message levels\)/);
    t.equal(
      badField(W, nested(20_000)).code,
      "TURNOUT_ERR_BAD_FIELD",
      "refused before the stack runs out",
    );
  },
);
