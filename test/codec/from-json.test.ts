/** JSON -> message: what ProtoJSON accepts, and every 400 one by one. */
import t, { type Test } from "tap";
import { parseJsonBody } from "../../src/codec/index.js";
import { badField, caught, codec, roundTrip } from "./fixtures/setup.js";

const S = "codectest.v1.Scalars";

/** Asserts a 400 BAD_FIELD at `field` whose message names the path and matches `detail`. */
function rejects(t: Test, name: string, json: string, field: string, detail: RegExp): void {
  const error = badField(name, json);
  t.equal(error.code, "TURNOUT_ERR_BAD_FIELD", `${json}: code`);
  t.equal(error.status, 400, `${json}: status`);
  t.equal(error.field, field, `${json}: field`);
  t.ok(error.message.startsWith(`field "${field}": `), `${json}: path in message`);
  t.match(error.message, detail, `${json}: ${error.message}`);
}

t.test("accepts both the proto name and the lowerCamel / json_name of a field", async (t) => {
  t.equal(roundTrip("users.v1.User", '{"display_name":"A"}'), '{"displayName":"A"}');
  t.equal(roundTrip("users.v1.User", '{"displayName":"A"}'), '{"displayName":"A"}');
  t.equal(roundTrip(S, '{"renamed_field":"a"}'), '{"customName":"a"}');
  t.equal(roundTrip(S, '{"customName":"a"}'), '{"customName":"a"}');
});

t.test("the same field under both names is a 400, a null under one of them too", async (t) => {
  const cases: Array<[string, string]> = [
    ['{"customName":"a","renamed_field":"b"}', "$.renamed_field"],
    ['{"customName":"a","renamed_field":null}', "$.renamed_field"],
    ['{"renamed_field":null,"customName":"a"}', "$.renamed_field"],
    ['{"display_name":null,"displayName":null}', "$.display_name"],
  ];
  for (const [json, field] of cases) {
    const type = json.includes("isplay") ? "users.v1.User" : S;
    rejects(t, type, json, field, /is also given as/);
  }
});

t.test("an unknown field is a 400 naming the field and the message type", async (t) => {
  rejects(
    t,
    "users.v1.User",
    '{"id":"1","nickName":"x"}',
    "$.nickName",
    /unknown field "nickName" in users\.v1\.User/,
  );
  rejects(
    t,
    S,
    '{"inner":{"nme":"x"}}',
    "$.inner.nme",
    /unknown field "nme" in codectest\.v1\.Inner/,
  );
});

t.test("the same field given by its proto name and its JSON name is a 400", async (t) => {
  rejects(
    t,
    "users.v1.User",
    '{"display_name":"a","displayName":"b"}',
    "$.displayName",
    /also given as "display_name"/,
  );
});

t.test("a value of the wrong JSON type is a 400 naming the expected type", async (t) => {
  rejects(t, S, '{"text":12}', "$.text", /expected string, got 12/);
  rejects(t, S, '{"i32":true}', "$.i32", /expected int32/);
  rejects(t, S, '{"flag":"true"}', "$.flag", /expected bool \(true or false\), got "true"/);
  rejects(t, S, '{"flag":1}', "$.flag", /expected bool/);
  rejects(t, S, '{"inner":"x"}', "$.inner", /expected an object \(codectest\.v1\.Inner\), got "x"/);
  rejects(t, S, '{"numbers":5}', "$.numbers", /expected an array of int32, got 5/);
  rejects(
    t,
    S,
    '{"byName":[1]}',
    "$.byName",
    /expected an object \(map<string, int32>\), got an array/,
  );
  rejects(t, S, '{"color":true}', "$.color", /expected enum codectest\.v1\.Color/);
  rejects(t, S, '{"data":7}', "$.data", /expected bytes as a base64 string/);
  rejects(t, S, "[1]", "$", /expected an object \(codectest\.v1\.Scalars\), got an array/);
});

t.test("a wrong type inside a repeated field names the element's index", async (t) => {
  rejects(t, S, '{"numbers":[1,"x",3]}', "$.numbers[1]", /invalid int32 value: "x"/);
  rejects(
    t,
    S,
    '{"inners":[{},{"child":{"count":"a"}}]}',
    "$.inners[1].child.count",
    /invalid int32/,
  );
});

t.test("null inside a repeated field is a 400", async (t) => {
  rejects(t, S, '{"numbers":[1,null]}', "$.numbers[1]", /null is not allowed in a list of int32/);
});

t.test("a wrong type inside a map names the key; bad keys are refused", async (t) => {
  rejects(t, S, '{"byName":{"a":1,"b":"two"}}', "$.byName.b", /invalid int32 value: "two"/);
  rejects(t, S, '{"byName":{"a":null}}', "$.byName.a", /null is not allowed as a map value/);
  rejects(t, S, '{"byInt":{"x":"a"}}', "$.byInt.x", /invalid int32 value: "x"/);
  for (const key of ["1e2", "1.0", "-0"]) {
    rejects(
      t,
      S,
      `{"byInt":{"${key}":"a"}}`,
      `$.byInt["${key}"]`,
      /a int32 map key is a plain decimal integer/,
    );
  }
  rejects(t, S, '{"byLong":{"1e2":"a"}}', '$.byLong["1e2"]', /a int64 map key is a plain decimal/);
  rejects(
    t,
    S,
    '{"byInt":{"2147483648":"a"}}',
    '$.byInt["2147483648"]',
    /int32 value out of range/,
  );
  rejects(t, S, '{"byBool":{"yes":"a"}}', "$.byBool.yes", /invalid bool map key "yes"/);
  rejects(t, S, '{"innerByName":{"k":{"count":1.5}}}', "$.innerByName.k.count", /not an integer/);
});

t.test("integers: numbers, numeric strings and integral exponents are accepted", async (t) => {
  t.equal(
    roundTrip(S, '{"i32":12,"u32":"12","s32":1e2,"f32":"1e2","sf32":-5}'),
    '{"i32":12,"u32":12,"s32":100,"f32":100,"sf32":-5}',
  );
  t.equal(
    roundTrip(S, '{"i32":2147483647,"u32":4294967295,"sf32":-2147483648}'),
    '{"i32":2147483647,"u32":4294967295,"sf32":-2147483648}',
  );
  t.equal(roundTrip(S, '{"i32":1.0}'), '{"i32":1}', "1.0 is integral");
  t.equal(
    roundTrip(S, '{"i32":"1.50e1","i64":"100e-2"}'),
    '{"i32":15,"i64":"1"}',
    "exact decimal arithmetic",
  );
});

t.test("integers: a fraction is a 400, not a truncation", async (t) => {
  rejects(t, S, '{"i32":1.5}', "$.i32", /int32 value is not an integer: 1\.5/);
  rejects(t, S, '{"i64":"1.5"}', "$.i64", /int64 value is not an integer: "1\.5"/);
  rejects(t, S, '{"i32":"12abc"}', "$.i32", /invalid int32 value: "12abc"/);
  rejects(t, S, '{"i32":" 12"}', "$.i32", /invalid int32 value/);
});

t.test("integers: a fraction JSON.parse would round to an integer is a 400", async (t) => {
  rejects(t, S, '{"i32":1e-400}', "$.i32", /int32 value is not an integer: "?1e-400/);
  rejects(t, S, '{"i32":99999999.999999999}', "$.i32", /not an integer/);
  rejects(t, S, '{"i64":45035996273704.965e2}', "$.i64", /not an integer/);
  rejects(t, S, '{"numbers":[1,99999999.999999999e-8]}', "$.numbers[1]", /not an integer/);
});

t.test("integers: a long run of zeros in a fraction is refused promptly", async (t) => {
  // /0+$/ made this quadratic: a 100 KB number held the event loop for 12 s.
  const zeros = "0".repeat(100_000);
  rejects(t, S, `{"i32":"1.${zeros}1"}`, "$.i32", /not an integer/);
  rejects(t, S, `{"i32":1.${zeros}1}`, "$.i32", /not an integer/);
});

t.test("integers: out of range for int32/uint32 is a 400, not a wrap", async (t) => {
  rejects(t, S, '{"i32":2147483648}', "$.i32", /int32 value out of range: 2147483648/);
  rejects(t, S, '{"i32":-2147483649}', "$.i32", /int32 value out of range/);
  rejects(t, S, '{"u32":-1}', "$.u32", /uint32 value out of range: -1/);
  rejects(t, S, '{"u32":"4294967296"}', "$.u32", /uint32 value out of range/);
});

t.test("int64 out of range is a 400 quoting the value, as string and as bare number", async (t) => {
  rejects(
    t,
    S,
    '{"i64":"99999999999999999999"}',
    "$.i64",
    /int64 value out of range: "99999999999999999999"/,
  );
  rejects(
    t,
    S,
    '{"i64":99999999999999999999}',
    "$.i64",
    /int64 value out of range: 99999999999999999999/,
  );
  rejects(t, S, '{"i64":"9223372036854775808"}', "$.i64", /int64 value out of range/);
  rejects(t, S, '{"u64":"18446744073709551616"}', "$.u64", /uint64 value out of range/);
  rejects(t, S, '{"u64":-1}', "$.u64", /uint64 value out of range/);
  rejects(t, S, '{"longs":["1",1e30]}', "$.longs[1]", /int64 value out of range/);
});

t.test(
  "the example of the brief: a nested int64 out of range is reported with its path",
  async (t) => {
    const error = caught(() =>
      codec("users.v1.CreateUserRequest").fromJson(
        parseJsonBody('{"user":{"balance_cents":"99999999999999999999"}}'),
        "$",
      ),
    );
    t.equal(error.field, "$.user.balance_cents");
    t.equal(
      error.message,
      'field "$.user.balance_cents": int64 value out of range: "99999999999999999999"',
    );
  },
);

t.test("int64 past 2^53 stays exact, as a string and as a bare number", async (t) => {
  t.equal(roundTrip(S, '{"i64":"9007199254740993"}'), '{"i64":"9007199254740993"}');
  t.equal(roundTrip(S, '{"i64":9007199254740993}'), '{"i64":"9007199254740993"}');
  t.equal(roundTrip(S, '{"i64":-9223372036854775808}'), '{"i64":"-9223372036854775808"}');
  t.equal(roundTrip(S, '{"u64":18446744073709551615}'), '{"u64":"18446744073709551615"}');
  t.equal(
    roundTrip(S, '{"s64":"-9007199254740993","f64":"18446744073709551615","sf64":"-1"}'),
    '{"s64":"-9007199254740993","f64":"18446744073709551615","sf64":"-1"}',
  );
  t.equal(
    roundTrip(S, '{"i64":"1e18"}'),
    '{"i64":"1000000000000000000"}',
    "exponent form in a string",
  );
});

t.test("a JS number past 2^53 that may be rounded is refused, never rounded further", async (t) => {
  const error = caught(() => codec(S).fromJson({ i64: 2 ** 60 }, "$"));
  t.equal(error.field, "$.i64");
  t.match(
    error.message,
    /int64 value 1152921504606847000 is not exact as a number; send it as a string/,
  );
});

t.test("an integer in exponent form past 2^53 is read exactly from its text", async (t) => {
  t.equal(
    roundTrip(S, '{"i64":1e18,"u64":1.8446744073709551615e19}'),
    '{"i64":"1000000000000000000","u64":"18446744073709551615"}',
  );
  rejects(t, S, '{"u64":1.8446744073709551616e19}', "$.u64", /out of range/);
});

t.test("floats: numbers, numeric strings, NaN and the infinities are accepted", async (t) => {
  t.equal(roundTrip(S, '{"dbl":"1.5","flt":0.25}'), '{"flt":0.25,"dbl":1.5}');
  t.equal(roundTrip(S, '{"dbl":"NaN","flt":"-Infinity"}'), '{"flt":"-Infinity","dbl":"NaN"}');
  t.equal(roundTrip(S, '{"dbl":"Infinity"}'), '{"dbl":"Infinity"}');
  t.equal(roundTrip(S, '{"flt":3.4028234663852886e38}'), '{"flt":3.4028235e+38}');
  t.equal(
    roundTrip(S, '{"flt":"3.4028235e+38"}'),
    '{"flt":3.4028235e+38}',
    "FLT_MAX as printed reads back",
  );
  t.equal(roundTrip(S, '{"flt":-3.4028235e+38}'), '{"flt":-3.4028235e+38}');
});

t.test("floats: out of range and non-numbers are a 400", async (t) => {
  rejects(t, S, '{"flt":3.5e38}', "$.flt", /float value out of range: 3\.5e\+?38/);
  rejects(t, S, '{"dbl":1e400}', "$.dbl", /double value out of range/);
  rejects(t, S, '{"dbl":"1e400"}', "$.dbl", /number out of range/);
  rejects(t, S, '{"dbl":"nan"}', "$.dbl", /invalid number: "nan"/);
  rejects(t, S, '{"dbl":"0x10"}', "$.dbl", /invalid number/);
  rejects(t, S, '{"dbl":[]}', "$.dbl", /expected double/);
});

t.test("enums: by name or by number; an unknown number is kept", async (t) => {
  t.equal(roundTrip(S, '{"color":"GREEN"}'), '{"color":"GREEN"}');
  t.equal(roundTrip(S, '{"color":1}'), '{"color":"RED"}');
  t.equal(roundTrip(S, '{"color":7}'), '{"color":7}');
  t.equal(
    roundTrip(S, '{"colors":["RED",2,"COLOR_UNSPECIFIED"]}'),
    '{"colors":["RED","GREEN","COLOR_UNSPECIFIED"]}',
  );
});

t.test("enums: an unknown name is a 400 naming the name and the enum type", async (t) => {
  rejects(
    t,
    S,
    '{"color":"BLUE"}',
    "$.color",
    /unknown enum codectest\.v1\.Color value name "BLUE"/,
  );
  rejects(t, S, '{"color":"red"}', "$.color", /value name "red"/);
  rejects(t, S, '{"color":"1"}', "$.color", /value name "1"/);
  rejects(t, S, '{"color":1.5}', "$.color", /invalid enum codectest\.v1\.Color value: 1\.5/);
  rejects(t, S, '{"colors":["RED","BLUE"]}', "$.colors[1]", /"BLUE"/);
});

t.test("bytes: standard and URL-safe base64, with or without padding", async (t) => {
  // 0xfb 0xff 0xbf: "+/+/" in the standard alphabet, "-_-_" in the URL-safe one.
  for (const text of ["+/+/", "-_-_"]) {
    t.equal(roundTrip(S, `{"data":"${text}"}`), '{"data":"+/+/"}', text);
  }
  t.equal(roundTrip(S, '{"data":"AQI="}'), '{"data":"AQI="}');
  t.equal(roundTrip(S, '{"data":"AQI"}'), '{"data":"AQI="}', "padding optional");
  t.equal(roundTrip(S, '{"data":"AQ=="}'), '{"data":"AQ=="}');
  t.equal(roundTrip(S, '{"data":"AQ"}'), '{"data":"AQ=="}');
});

t.test("bytes: anything else than base64 is a 400", async (t) => {
  // "a-/_" mixes the URL-safe and the standard alphabet: one or the other.
  for (const text of ["***", "AQI=x", "A", "AQI==", "AQ=", "a b c d", "AQ==AQ==", "a-/_", "+_-/"]) {
    rejects(t, S, `{"data":"${text}"}`, "$.data", /invalid base64 for bytes/);
  }
});

t.test("null means default: the field is left unset", async (t) => {
  t.equal(
    roundTrip(
      S,
      '{"i32":null,"text":null,"inner":null,"numbers":null,"byName":null,"color":null,"maybe":null}',
    ),
    "{}",
  );
  t.same(codec(S).fromJson({ inner: null, text: null }, "$"), {});
});

t.test("a oneof with two members set is a 400 naming both", async (t) => {
  rejects(
    t,
    S,
    '{"choiceText":"a","choice_number":2}',
    "$.choice_number",
    /oneof choice has two members set: choice_text and choice_number; set at most one/,
  );
  rejects(
    t,
    S,
    '{"choiceInner":{},"choiceText":""}',
    "$.choiceText",
    /oneof choice has two members set: choice_inner and choice_text/,
  );
});

t.test("fields and oneofs may be named like Object.prototype members", async (t) => {
  const P = "codectest.v1.PrototypeNames";
  t.equal(
    roundTrip(P, '{"toString":3,"valueOf":"v","second":"s"}'),
    '{"toString":3,"valueOf":"v","second":"s"}',
  );
  const error = badField(P, '{"first":"a","second":"b"}');
  t.match(error.message, /oneof constructor has two members set: first and second/);
});

t.test("a oneof with one member set, the others null, is accepted", async (t) => {
  t.equal(roundTrip(S, '{"choiceText":null,"choiceNumber":0}'), '{"choiceNumber":0}');
});

t.test("proto3 optional: an explicit zero is kept (presence), null leaves it unset", async (t) => {
  t.equal(roundTrip(S, '{"maybe":0}'), '{"maybe":0}');
  t.equal(roundTrip(S, '{"maybe":null}'), "{}");
});

t.test(
  "64-bit map keys whose eight bytes read as digits print as sent, not as those digits",
  async (t) => {
    // protobufjs keys a decoded map by the 8 bytes of the value: these are "12345678" and "-1234567".
    for (const key of ["4050765991979987505", "3978425819141910829", "12345678", "-1", "0"]) {
      t.equal(roundTrip(S, `{"byLong":{"${key}":"v"}}`), `{"byLong":{"${key}":"v"}}`, key);
    }
    t.equal(
      roundTrip(S, '{"byUlong":{"4050765991979987505":"v"}}'),
      '{"byUlong":{"4050765991979987505":"v"}}',
    );
  },
);

t.test("maps: keys are converted per key type", async (t) => {
  // Printed in the decoded object's key order: JS puts array-index keys first.
  t.equal(roundTrip(S, '{"byInt":{"-5":"a","7":"b"}}'), '{"byInt":{"7":"b","-5":"a"}}');
  t.equal(
    roundTrip(S, '{"byLong":{"9223372036854775807":"max","-1":"m"}}'),
    '{"byLong":{"9223372036854775807":"max","-1":"m"}}',
  );
  t.equal(
    roundTrip(S, '{"byUlong":{"18446744073709551615":"max"}}'),
    '{"byUlong":{"18446744073709551615":"max"}}',
  );
  t.equal(
    roundTrip(S, '{"byBool":{"true":"y","false":"n"}}'),
    '{"byBool":{"true":"y","false":"n"}}',
  );
  t.equal(
    roundTrip(S, '{"innerByName":{"__proto__":{"count":1}}}'),
    '{"innerByName":{"__proto__":{"count":1}}}',
  );
});

t.test(
  "a string with a lone surrogate is a 400: protobuf strings must be valid UTF-8",
  async (t) => {
    rejects(t, S, '{"text":"a\\ud800b"}', "$.text", /lone UTF-16 surrogate/);
    t.equal(roundTrip(S, '{"text":"\\ud83d\\ude00"}'), '{"text":"\u{1F600}"}', "a pair is fine");
  },
);
