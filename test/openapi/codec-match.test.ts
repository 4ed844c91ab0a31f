import t from "tap";
import { compileMessageCodec, parseJsonBody } from "../../src/codec/index.js";
import type { JsonOptions } from "../../src/config/types.js";
import { type JsonSchema, SchemaRegistry, styleOf } from "../../src/openapi/index.js";
import { loadProtos } from "../../src/worker/index.js";
import { documentSchemas, FIXTURE_PROTOS } from "./check.js";

// What the codec prints is the ground truth: each schema must accept exactly that shape.
const root = loadProtos([FIXTURE_PROTOS]);
const sinkType = root.lookupType("kitchen.v1.Sink");
const codec = compileMessageCodec(sinkType);

const SAMPLE = {
  small_int: -5,
  small_uint: 4294967295,
  signed_small: -3,
  big_int: "-9223372036854775808",
  big_uint: "18446744073709551615",
  fixed_big: "12",
  signed_big: "-12",
  ratio: "NaN",
  score: 2.5,
  flag: true,
  label_text: "hé",
  raw_bytes: "AAEC/w==",
  color: "GREEN",
  colors: ["RED", 2],
  counts_by_name: { a: "5" },
  names_by_id: { "-3": "x" },
  nodes_by_flag: { true: { node_name: "n" } },
  choice_node: { node_name: "c", children: [{ node_name: "d", parent: {} }] },
  maybe_count: 0,
  seen_at: "2024-05-01T12:30:00.005+02:00",
  wait_time: "-1.5s",
  extra: { k: [1, "a", null, { b: true }] },
  anything: null,
  items_list: [1, "x"],
  wrapped_big: "77",
  wrapped_text: "",
  wrapped_double: "Infinity",
  mask: "a.bC,d",
  packed: { "@type": "type.googleapis.com/kitchen.v1.Node", node_name: "p" },
  nothing: {},
  root_node: { node_name: "r" },
  big_list: ["1", "-2"],
  times: ["2024-01-01T00:00:00Z"],
};

const VARIANTS: JsonOptions[] = [];
for (const names of ["proto", "camel"] as const) {
  for (const int64 of ["string", "number"] as const) {
    for (const enums of ["name", "number"] as const) {
      for (const emitDefaults of [false, true])
        VARIANTS.push({ names, int64, enums, emitDefaults });
    }
  }
}

const label = (o: JsonOptions) =>
  `${o.names}/${o.int64}/${o.enums}/${o.emitDefaults ? "all" : "set"}`;
const flip = {
  names: (o: JsonOptions): JsonOptions => ({
    ...o,
    names: o.names === "proto" ? "camel" : "proto",
  }),
  int64: (o: JsonOptions): JsonOptions => ({
    ...o,
    int64: o.int64 === "string" ? "number" : "string",
  }),
  enums: (o: JsonOptions): JsonOptions => ({ ...o, enums: o.enums === "name" ? "number" : "name" }),
};

/** Response and request schemas of Sink for every variant, compiled from one document. */
function compileAll() {
  const registry = new SchemaRegistry();
  const refs = new Map<string, JsonSchema>();
  for (const options of VARIANTS) {
    refs.set(
      `response ${label(options)}`,
      registry.messageSchema(sinkType, styleOf(options, "response")),
    );
    refs.set(
      `request ${label(options)}`,
      registry.messageSchema(sinkType, styleOf(options, "request")),
    );
  }
  const doc = { components: { schemas: registry.components() } };
  const schemas = documentSchemas(doc as never);
  const at = (key: string) => {
    const ref = refs.get(key)!.$ref as string;
    return schemas.at(...ref.slice(2).split("/"));
  };
  return {
    response: (o: JsonOptions) => at(`response ${label(o)}`),
    request: (o: JsonOptions) => at(`request ${label(o)}`),
  };
}

const schemas = compileAll();
const message = sinkType.decode(sinkType.encode(codec.fromJson(SAMPLE, "$")).finish());
const printed = (options: JsonOptions) => codec.toJson(message, options);

t.test(
  "what the codec prints in each of the 16 JSON styles fits that style's reply schema",
  async (t) => {
    for (const options of VARIANTS) {
      const validate = schemas.response(options);
      t.ok(
        validate(JSON.parse(printed(options))),
        `${label(options)} ${JSON.stringify(validate.errors)}`,
      );
    }
  },
);

t.test("and fails the schema of a style with other names, int64 or enum forms", async (t) => {
  for (const options of VARIANTS) {
    const body = JSON.parse(printed(options));
    for (const [what, change] of Object.entries(flip)) {
      t.notOk(schemas.response(change(options))(body), `${label(options)} vs other ${what}`);
    }
  }
});

t.test("an empty message printed without defaults fails a schema that requires them", async (t) => {
  const empty = sinkType.create();
  for (const options of VARIANTS.filter((o) => o.emitDefaults)) {
    t.ok(schemas.response(options)(JSON.parse(codec.toJson(empty, options))), label(options));
    const sparse = JSON.parse(codec.toJson(empty, { ...options, emitDefaults: false }));
    t.notOk(schemas.response(options)(sparse), `${label(options)}: {} misses printed defaults`);
  }
});

t.test("a body fitting a request schema is one the codec reads", async (t) => {
  for (const options of VARIANTS) {
    const text = printed(options);
    t.ok(schemas.request(options)(JSON.parse(text)), label(options));
    t.doesNotThrow(() => codec.fromJson(parseJsonBody(text), "$"), label(options));
  }
});

t.test(
  "an enum value the proto has no name for, printed as its number, fits the reply schema in every style",
  async (t) => {
    const newer = sinkType.decode(
      sinkType.encode(codec.fromJson({ ...SAMPLE, color: 7, colors: [9, "RED"] }, "$")).finish(),
    );
    for (const options of VARIANTS) {
      const body = JSON.parse(codec.toJson(newer, options));
      t.equal(body.color, 7, `${label(options)}: printed as its number`);
      const validate = schemas.response(options);
      t.ok(validate(body), `${label(options)} ${JSON.stringify(validate.errors)}`);
      t.ok(schemas.request(options)(body), `${label(options)}: the request schema takes it too`);
    }
  },
);

t.test("a Timestamp, float or Any the codec refuses fails the request schema too", async (t) => {
  const options = VARIANTS[0]!;
  const refused = [
    { seen_at: "2024-05-01t12:30:00z" },
    { seen_at: "2024-05-01T12:30:00+0200" },
    { seen_at: "2024-05-01T12:30:00.0000000001Z" },
    { seen_at: "2016-12-31T23:59:60Z" },
    { ratio: 1e39 },
    { packed: { node_name: "no @type" } },
  ];
  for (const body of refused) {
    const what = JSON.stringify(body);
    t.throws(() => codec.fromJson(body, "$"), `the codec refuses ${what}`);
    t.notOk(schemas.request(options)(body), `the schema refuses ${what}`);
  }
  for (const body of [{ ratio: 3.4e38 }, { packed: {} }, { seen_at: "0001-01-01T00:00:00Z" }]) {
    const what = JSON.stringify(body);
    t.doesNotThrow(() => codec.fromJson(body, "$"), `the codec reads ${what}`);
    t.ok(schemas.request(options)(body), `the schema takes ${what}`);
  }
});
