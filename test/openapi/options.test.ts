import t from "tap";
import { loadConfigAndProtos } from "../../src/config/load.js";
import { buildOpenApiDocument } from "../../src/openapi/index.js";
import {
  component,
  danglingRefs,
  documentSchemas,
  openApiErrors,
  parametersOf,
  responsesOf,
  writeFixtureRoutes,
} from "./check.js";

// No `json` on sinks.get: canonical ProtoJSON (camel names, int64 strings, enum names).
const ROUTES = `  - name: sinks.get
    method: GET
    path: /v1/sinks/:sink_id
    subject: svc.sinks.{sink_id}.get
    request: kitchen.v1.SinkRequest
    response: kitchen.v1.Sink
  - name: sinks.put
    method: PUT
    path: /v1/sinks/:sink_id
    subject: svc.sinks.put
    request: kitchen.v1.SinkRequest
    response: kitchen.v1.Sink
    body: sink
    json: { names: camel, int64: number, enums: number, emitDefaults: true }
    rateLimit: { max: 5, per: 1m, key: ip }
  - name: sinks.replace
    method: POST
    path: /v1/sinks/:sink_id/replace
    subject: svc.sinks.replace
    request: kitchen.v1.SinkRequest
    response: kitchen.v1.Sink
    body: "*"
    json: { names: proto }
  - name: sinks.events
    method: POST
    path: /v1/sinks/:sink_id/events
    subject: events.sinks.{sink_id}
    request: kitchen.v1.SinkRequest
    response: kitchen.v1.Sink
    body: sink
    mode: publish
`;

const { config, root } = loadConfigAndProtos(writeFixtureRoutes(ROUTES));
const doc = buildOpenApiDocument(config, root, { title: "Kitchen", version: "9.9.9" });
const schemas = documentSchemas(doc);
const SINK = "/v1/sinks/{sink_id}";

type Schema = Record<string, unknown>;

/** The schema at the end of a `$ref` (or the schema itself when inline). */
function deref(schema: unknown): Schema {
  const ref = (schema as Schema).$ref;
  if (typeof ref !== "string") return schema as Schema;
  return component(doc, ref.replace("#/components/schemas/", ""));
}

function replySchema(path: string, method: string, status = "200"): Schema {
  const op = doc.paths[path]?.[method] as {
    responses: Record<string, { content: Record<string, { schema: unknown }> }>;
  };
  return deref(op.responses[status]?.content["application/json"]?.schema);
}

function bodySchema(path: string, method: string): Schema {
  const op = doc.paths[path]?.[method] as {
    requestBody: { content: Record<string, { schema: unknown }> };
  };
  return deref(op.requestBody.content["application/json"]?.schema);
}

const props = (schema: Schema) => schema.properties as Record<string, Schema>;

t.test("the fixture document is valid OpenAPI 3.1 with every $ref resolving", async (t) => {
  t.same(await openApiErrors(doc), []);
  t.same(danglingRefs(doc), []);
  t.match(doc.info, { title: "Kitchen", version: "9.9.9" });
  for (const name of Object.keys(doc.components.schemas)) {
    t.doesNotThrow(() => schemas.at("components", "schemas", name), name);
  }
});

t.test("canonical JSON: lowerCamel names, int64 as decimal strings, enums by name", async (t) => {
  const sink = props(replySchema(SINK, "get"));
  t.ok("bigInt" in sink && !("big_int" in sink));
  t.match(sink.bigInt, { type: "string", pattern: String });
  t.match(deref(sink.color), {
    anyOf: [{ type: "string", enum: ["COLOR_UNSPECIFIED", "RED", "GREEN"] }, { type: "integer" }],
  });
  t.match(sink.wrappedBig, { type: ["string", "null"] }, "a wrapper is its scalar, nullable");
});

t.test("int64: number gives integers, enums: number gives the enum's numbers", async (t) => {
  const sink = props(replySchema(SINK, "put"));
  t.match(sink.bigInt, { type: "integer", format: "int64" });
  t.match(sink.bigUint, { type: "integer", minimum: 0 });
  t.match(deref(sink.color), {
    anyOf: [{ type: "integer", enum: [0, 1, 2] }, { type: "integer" }],
  });
  t.match(sink.wrappedBig, { type: ["integer", "null"] });
});

t.test("proto names: the .proto's snake_case keys, in the body and in nested types", async (t) => {
  const body = props(bodySchema(`${SINK}/replace`, "post"));
  t.ok("min_big" in body && "tag_names" in body);
  t.ok("small_int" in props(deref(body.sink)), "the nested Sink uses proto names too");
});

t.test("emitDefaults requires implicit-presence fields only", async (t) => {
  const required = replySchema(SINK, "put").required as string[];
  t.ok(["smallInt", "colors", "countsByName", "bigList"].every((k) => required.includes(k)));
  for (const key of ["rootNode", "choiceText", "maybeCount", "seenAt", "wrappedText"]) {
    t.notOk(required.includes(key), `${key} is not always printed`);
  }
  t.notOk("required" in bodySchema(SINK, "put"), "the request body requires nothing");
});

t.test("path params are `in: path`; the rest are query params, dotted and exploded", async (t) => {
  const params = parametersOf(doc, SINK, "get");
  t.match(params.get("sink_id"), { in: "path", required: true });
  t.match(params.get("minBig"), { in: "query", schema: { type: "integer", format: "int64" } });
  t.match(params.get("tagNames"), {
    in: "query",
    style: "form",
    explode: true,
    schema: { type: "array" },
  });
  t.match(params.get("sink.smallInt"), { in: "query", schema: { type: "integer" } });
  t.match(params.get("sink.seenAt"), { in: "query", schema: { format: "date-time" } });
  t.match(params.get("sink.times"), { schema: { type: "array", items: { format: "date-time" } } });
  t.match(params.get("filter.nodeName"), { in: "query" });
  t.match(params.get("color"), { schema: { enum: ["COLOR_UNSPECIFIED", "RED", "GREEN"] } });
  t.match(params.get("sink.countsByName"), {
    in: "query",
    style: "deepObject",
    schema: { type: "object", additionalProperties: { type: "integer", format: "int64" } },
  });
  for (const absent of ["sink.extra", "filter.parent.nodeName", "filter.children"]) {
    t.notOk(
      params.has(absent),
      `${absent}: Struct, recursion and repeated messages are not params`,
    );
  }
});

t.test("a body bound to one field takes that field; it is no query param then", async (t) => {
  t.ok("smallInt" in props(bodySchema(SINK, "put")));
  const params = [...parametersOf(doc, SINK, "put").keys()];
  t.ok(params.includes("minBig"));
  t.notOk(params.some((name) => name.startsWith("sink.")));
});

t.test('body "*" is the whole message minus path-bound fields, with no query params', async (t) => {
  const body = bodySchema(`${SINK}/replace`, "post");
  t.notOk("sink_id" in props(body));
  t.equal(body.additionalProperties, false);
  t.same([...parametersOf(doc, `${SINK}/replace`, "post").keys()], ["sink_id"]);
});

t.test(
  "a publish route answers 202 {stream, seq, duplicate} and takes Idempotency-Key",
  async (t) => {
    const op = doc.paths[`${SINK}/events`]?.post as { responses: Record<string, unknown> };
    t.same(
      Object.keys(op.responses).filter((s) => s.startsWith("2")),
      ["202"],
    );
    const ack = schemas.response(`${SINK}/events`, "post", "202");
    t.ok(ack({ stream: "S", seq: 3, duplicate: false }));
    t.notOk(ack({ stream: "S", seq: 3 }), "duplicate is always there");
    t.match(parametersOf(doc, `${SINK}/events`, "post").get("Idempotency-Key"), { in: "header" });
    t.match(op.responses["422"], { description: /Idempotency-Key was already used/ });
    t.notOk("422" in responsesOf(doc, SINK, "get"), "only publish routes answer 422");
  },
);

t.test("429 with Retry-After only on a rate-limited route", async (t) => {
  t.ok("Retry-After" in (responsesOf(doc, SINK, "put")["429"]?.headers ?? {}));
  t.notOk("429" in responsesOf(doc, SINK, "get"));
});

t.test("a recursive message is one component referring to itself", async (t) => {
  const node = Object.entries(doc.components.schemas).find(([name]) =>
    name.startsWith("kitchen.v1.Node"),
  );
  const [name, schema] = node!;
  const children = props(schema).children as { items: { $ref: string } };
  t.equal(children.items.$ref, `#/components/schemas/${name}`);
});

t.test("oneof members exclude each other in the schema", async (t) => {
  const sink = schemas.requestBody(SINK, "put");
  t.ok(sink({ choiceText: "a" }));
  t.notOk(sink({ choiceText: "a", choiceNumber: 1 }));
  t.notOk(sink({ choiceNode: {}, choiceNumber: 1 }));
});

t.test("floats take NaN and the infinities as strings; bytes are base64", async (t) => {
  const sink = schemas.requestBody(SINK, "put");
  t.ok(sink({ ratio: "NaN", score: "-Infinity", rawBytes: "AAEC/w==" }));
  t.notOk(sink({ score: "lots" }));
  t.notOk(sink({ rawBytes: "not base64!" }));
});
