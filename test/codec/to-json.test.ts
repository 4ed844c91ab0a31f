/** Message -> JSON: every JsonOptions combination, number printing, presence. */
import { isLosslessNumber } from "lossless-json";
import t from "tap";
import { parseJsonBody } from "../../src/codec/index.js";
import type { JsonOptions } from "../../src/config/types.js";
import { CANONICAL, codec, roundTrip } from "./fixtures/setup.js";

const S = "codectest.v1.Scalars";

function allOptions(): JsonOptions[] {
  const out: JsonOptions[] = [];
  for (const names of ["proto", "camel"] as const) {
    for (const int64 of ["string", "number"] as const) {
      for (const enums of ["name", "number"] as const) {
        for (const emitDefaults of [false, true]) out.push({ names, int64, enums, emitDefaults });
      }
    }
  }
  return out;
}

const label = (o: JsonOptions) => `${o.names}/${o.int64}/${o.enums}/${o.emitDefaults}`;

function decodedEmpty(name: string): object {
  const type = codec(name).type;
  return type.decode(type.encode({}).finish());
}

t.test(
  "an empty message prints {} whatever the options, when defaults are not emitted",
  async (t) => {
    for (const options of allOptions().filter((o) => !o.emitDefaults)) {
      t.equal(codec(S).toJson(decodedEmpty(S), options), "{}", label(options));
    }
  },
);

t.test(
  "emitDefaults prints implicit-presence fields at their default in declaration order, per options",
  async (t) => {
    for (const options of allOptions().filter((o) => o.emitDefaults)) {
      const camel = options.names === "camel";
      const long = options.int64 === "number" ? "0" : '"0"';
      const color = options.enums === "number" ? "0" : '"COLOR_UNSPECIFIED"';
      const expected =
        `{"i32":0,"u32":0,"s32":0,"f32":0,"sf32":0,"i64":${long},"u64":${long},"s64":${long},` +
        `"f64":${long},"sf64":${long},"flt":0,"dbl":0,"flag":false,"text":"","data":"",` +
        `"color":${color},"${camel ? "customName" : "renamed_field"}":"",` +
        `"numbers":[],"inners":[],"colors":[],"${camel ? "byName" : "by_name"}":{},` +
        `"${camel ? "byInt" : "by_int"}":{},"${camel ? "byLong" : "by_long"}":{},` +
        `"${camel ? "byUlong" : "by_ulong"}":{},"${camel ? "byBool" : "by_bool"}":{},` +
        `"${camel ? "innerByName" : "inner_by_name"}":{},"longs":[]}`;
      t.equal(codec(S).toJson(decodedEmpty(S), options), expected, label(options));
    }
  },
);

t.test(
  "emitDefaults leaves out unset message fields, proto3 optional fields and oneofs",
  async (t) => {
    const text = codec(S).toJson(decodedEmpty(S), { ...CANONICAL, emitDefaults: true });
    const unset = ["inner", "maybe", "maybeColor", "maybeLong", "maybeData", "choiceText"];
    for (const key of [...unset, "choiceNumber", "choiceInner"]) {
      t.notMatch(text, `"${key}"`, key);
    }
  },
);

t.test(
  "a proto3 optional field set to its default is printed: presence is what counts",
  async (t) => {
    const json = '{"maybe":0,"maybeColor":"COLOR_UNSPECIFIED","maybeLong":"0","maybeData":""}';
    t.equal(roundTrip(S, json, CANONICAL), json);
  },
);

t.test("int64 as string or bare number and enums as name or number, exact past 2^53", async (t) => {
  const json =
    '{"i64":"-9007199254740993","u64":"18446744073709551615","color":"GREEN","customName":"r",' +
    '"colors":["RED",5],"byLong":{"-2":"x"},"longs":["1","9223372036854775807"]}';
  t.equal(roundTrip(S, json, CANONICAL), json, "canonical");
  t.equal(
    roundTrip(S, json, { names: "proto", int64: "number", enums: "number", emitDefaults: false }),
    '{"i64":-9007199254740993,"u64":18446744073709551615,"color":2,"renamed_field":"r",' +
      '"colors":[1,5],"by_long":{"-2":"x"},"longs":[1,9223372036854775807]}',
    "proto names, numbers; map keys stay strings",
  );
  t.equal(
    roundTrip(S, json, { names: "camel", int64: "number", enums: "name", emitDefaults: false }),
    '{"i64":-9007199254740993,"u64":18446744073709551615,"color":"GREEN","customName":"r",' +
      '"colors":["RED",5],"byLong":{"-2":"x"},"longs":[1,9223372036854775807]}',
    "an enum number without a name prints as a number",
  );
});

t.test(
  "toJsonValue reads back big int64 numbers as LosslessNumber, like a legacy body",
  async (t) => {
    const c = codec(S);
    const message = c.type.decode(
      c.type.encode(c.fromJson({ i64: "9007199254740993" }, "$")).finish(),
    );
    const value = c.toJsonValue(message, { ...CANONICAL, int64: "number" }) as { i64: unknown };
    t.ok(isLosslessNumber(value.i64));
    t.same(value, parseJsonBody('{"i64":9007199254740993}'));
  },
);

t.test("float32 prints its shortest round-tripping decimal: 0.1f is 0.1", async (t) => {
  t.equal(roundTrip(S, '{"flt":0.1}'), '{"flt":0.1}');
  t.equal(roundTrip(S, '{"flt":1e30}'), '{"flt":1e+30}');
  t.equal(roundTrip(S, '{"flt":-16777217}'), '{"flt":-16777216}', "float32 has 24 bits");
  t.equal(roundTrip(S, '{"flt":1.17549435e-38}'), '{"flt":1.1754944e-38}');
  t.equal(roundTrip(S, '{"dbl":0.1}'), '{"dbl":0.1}', "double prints as JS does");
  // At a power of two a neighbour of the nearest 8-digit decimal reads back too.
  t.equal(roundTrip(S, `{"flt":${2 ** -96}}`), '{"flt":1.2621775e-29}', "2^-96");
  t.equal(roundTrip(S, `{"flt":${2 ** 87}}`), '{"flt":1.5474251e+26}', "2^87");
  t.equal(roundTrip(S, '{"flt":-1.2621775e-29}'), '{"flt":-1.2621775e-29}');
});

t.test("-0 is kept and printed as -0; NaN and the infinities as strings", async (t) => {
  t.equal(roundTrip(S, '{"dbl":-0}'), '{"dbl":-0}');
  t.equal(roundTrip(S, '{"flt":"NaN","dbl":"-Infinity"}'), '{"flt":"NaN","dbl":"-Infinity"}');
});

t.test("strings are escaped as JSON requires, short and long", async (t) => {
  const tricky = 'quote " backslash \\ newline \n tab \t nul \u0000 é 😀';
  const long = `${"x".repeat(50)}"${"y".repeat(10)}`;
  for (const text of [tricky, long, "plain", ""]) {
    const out = roundTrip(S, JSON.stringify({ text }), { ...CANONICAL, emitDefaults: true });
    t.equal((JSON.parse(out) as { text: string }).text, text, JSON.stringify(text));
  }
});

t.test("a oneof member set to its default is printed: presence is what counts", async (t) => {
  t.equal(roundTrip(S, '{"choiceText":""}'), '{"choiceText":""}');
  t.equal(roundTrip(S, '{"choiceInner":{}}'), '{"choiceInner":{}}');
});

t.test(
  "proto2 fields track presence: unset ones (their [default] too) are omitted, set ones printed even at 0",
  async (t) => {
    const legacy = codec("codectest.v2.Legacy");
    const message = legacy.type.decode(legacy.type.encode({ b: 0, r: 1 }).finish());
    t.equal(legacy.toJson(message, CANONICAL), '{"b":0,"r":1}');
    t.equal(
      legacy.toJson(message, { ...CANONICAL, emitDefaults: true }),
      '{"b":0,"r":1,"list":[]}',
    );
    t.equal(roundTrip("codectest.v2.Legacy", '{"a":0,"s":"","r":2}'), '{"a":0,"s":"","r":2}');
  },
);

t.test("nested and repeated messages print with the same options", async (t) => {
  const json =
    '{"inner":{"name":"a","child":{"count":2}},"inners":[{},{"name":"b"}],"innerByName":{"k":{"count":1}}}';
  t.equal(roundTrip(S, json), json);
  t.equal(
    roundTrip("codectest.v1.Inner", '{"name":"a","child":{"count":2}}', {
      ...CANONICAL,
      names: "proto",
      emitDefaults: true,
    }),
    '{"name":"a","count":0,"child":{"name":"","count":2}}',
    "defaults emitted inside the nested message too; its unset child stays out",
  );
});

t.test("bool map keys and int map keys print as JSON strings", async (t) => {
  t.equal(
    roundTrip(S, '{"byBool":{"false":"n"},"byInt":{"3":"c"}}'),
    '{"byInt":{"3":"c"},"byBool":{"false":"n"}}',
  );
});
