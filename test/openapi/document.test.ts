import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import Fastify from "fastify";
import t from "tap";
import { loadConfigAndProtos } from "../../src/config/load.js";
import { buildOpenApiDocument, registerOpenApi } from "../../src/openapi/index.js";
import { tableWithOwnProtos } from "../config/fixtures/helpers.js";
import {
  component,
  danglingRefs,
  documentSchemas,
  openApiErrors,
  parametersOf,
  responsesOf,
} from "./check.js";

const EXAMPLE = resolve(dirname(fileURLToPath(import.meta.url)), "../../routes.yaml");
const { config, root } = loadConfigAndProtos(EXAMPLE);
const doc = buildOpenApiDocument(config, root);
const schemas = documentSchemas(doc);

const USER = "/v1/regions/{region}/users/{id}";
const USERS = "/v1/regions/{region}/users";

t.test("the example routes' document passes the official OpenAPI 3.1 schema", async (t) => {
  t.same(await openApiErrors(doc), []);
  t.equal(doc.openapi, "3.1.1");
});

t.test(
  "the official schema check catches a broken document (so the pass above means something)",
  async (t) => {
    const broken = structuredClone(doc) as unknown as { paths: Record<string, unknown> };
    broken.paths[USER] = { get: { responses: "none" } };
    t.not((await openApiErrors(broken as never)).length, 0);
  },
);

t.test("every $ref in the document resolves inside it", async (t) => {
  t.same(danglingRefs(doc), []);
  t.ok(JSON.stringify(doc).includes('"$ref":"#/components/schemas/users.v1.User'), "refs are used");
});

t.test("every component schema compiles as strict JSON Schema 2020-12", async (t) => {
  for (const name of Object.keys(doc.components.schemas)) {
    t.doesNotThrow(() => schemas.at("components", "schemas", name), name);
  }
});

t.test("each route is one operation named after it, on its path with {param}s", async (t) => {
  const ids = Object.values(doc.paths).flatMap((item) =>
    Object.values(item).map((op) => op.operationId),
  );
  t.same(ids.sort(), config.routes.map((r) => r.name).sort());
  t.equal(doc.paths[USERS]?.post?.operationId, "users.create", "two methods share a path item");
  t.same(doc.paths["/v1/orders/{id}"]?.get?.tags, ["orders"]);
});

t.test("path params are required path parameters; other fields are query parameters", async (t) => {
  const params = parametersOf(doc, USER, "get");
  t.match(params.get("region"), { in: "path", required: true, schema: { type: "string" } });
  t.match(params.get("id"), { in: "path", required: true });
  t.match(params.get("fields"), { in: "query", schema: { type: "string" } }, "a FieldMask as text");
  t.match(params.get("x-user-id"), { in: "header" }, "a forwarded header");
  t.equal(params.size, 5);
});

t.test(
  "a subject param's schema refuses what the gateway refuses as a subject token",
  async (t) => {
    const region = schemas.at("paths", USER, "get", "parameters", "0", "schema");
    t.ok(region("eu-west"));
    for (const bad of ["eu.west", "eu*", "a>b", "a b", ""])
      t.notOk(region(bad), JSON.stringify(bad));
  },
);

t.test("users.create takes its body as the user field: a User, nothing required", async (t) => {
  const body = doc.paths[USERS]?.post?.requestBody as {
    content: Record<string, { schema: unknown }>;
  };
  t.same(body.content["application/json"]?.schema, { $ref: "#/components/schemas/users.v1.User" });
  t.notOk("required" in component(doc, "users.v1.User"));
  const params = parametersOf(doc, USERS, "post");
  t.same([...params.keys()], ["region"], "the body field is no query parameter");
});

t.test(
  "a reply under emitDefaults requires the fields always printed, never message fields",
  async (t) => {
    const user = component(doc, "users.v1.User-AllFields");
    t.same(user.required, [
      "id",
      "region",
      "display_name",
      "email",
      "tier",
      "balance_cents",
      "tags",
      "verified",
      "labels",
    ]);
    const reply = schemas.response(USER, "get", "200");
    t.ok(
      reply({
        id: "1",
        region: "eu",
        display_name: "",
        email: "",
        tier: "TIER_PRO",
        balance_cents: "0",
        tags: [],
        verified: false,
        labels: {},
      }),
    );
    t.notOk(reply({ id: "1" }), "a reply missing printed defaults does not fit");
  },
);

t.test(
  "a worker's typed error comes as application/json beside the gateway's problem+json",
  async (t) => {
    const content = responsesOf(doc, USER, "get")["404"]?.content;
    t.same(Object.keys(content ?? {}).sort(), ["application/json", "application/problem+json"]);
    const error = schemas.response(USER, "get", "404");
    t.ok(error({ error: "not_found", message: "no user" }));
    t.notOk(error({ error: "not_found", code: 3 }), "unknown fields do not fit");
  },
);

t.test(
  "a map field of scalars is a deepObject query parameter (name[KEY]=VALUE), as the binding reads it",
  async (t) => {
    const file = tableWithOwnProtos(
      t,
      {
        "m.proto": `syntax = "proto3";
package m.v1;
message Inner { string a = 1; }
message ListThings { map<string, string> attrs = 1; map<string, int32> counts = 2; map<string, Inner> nested = 3; }
message Things { repeated string ids = 1; }
`,
      },
      `  - name: things.list
    method: GET
    path: /v1/things
    subject: svc.things.list
    request: m.v1.ListThings
    response: m.v1.Things
`,
    );
    const loaded = loadConfigAndProtos(file);
    const params = parametersOf(
      buildOpenApiDocument(loaded.config, loaded.root),
      "/v1/things",
      "get",
    );
    t.match(params.get("attrs"), {
      in: "query",
      style: "deepObject",
      explode: true,
      schema: { type: "object", additionalProperties: { type: "string" } },
    });
    t.match(params.get("counts"), { schema: { additionalProperties: { type: "integer" } } });
    t.notOk(params.has("nested"), "a map of messages cannot be set from a query");
  },
);

t.test(
  "a proto2 required field of a reply is listed as required, whatever emitDefaults",
  async (t) => {
    const file = tableWithOwnProtos(
      t,
      {
        "l.proto": `syntax = "proto2";
package l.v1;
message Get { required string id = 1; }
message Thing { required string id = 1; optional int32 count = 2; }
`,
      },
      `  - name: legacy.get
    method: GET
    path: /v1/legacy/:id
    subject: svc.legacy.get
    request: l.v1.Get
    response: l.v1.Thing
`,
    );
    const loaded = loadConfigAndProtos(file);
    const doc = buildOpenApiDocument(loaded.config, loaded.root);
    t.strictSame(component(doc, "l.v1.Thing")?.required, ["id"]);
  },
);

t.test(
  "a worker's Http-Status 204 or 205 is documented without content; a route with legacy declares Retry-After on 503",
  async (t) => {
    const get = responsesOf(doc, USER, "get");
    for (const status of ["204", "205"]) {
      t.ok(get[status], status);
      t.equal(get[status]?.content, undefined, `${status} has no content`);
    }
    t.ok(get["2XX"]?.content, "other successes carry the reply");
    t.match(get["503"]?.headers, { "Retry-After": { schema: { type: "integer" } } });
  },
);

t.test("GET routes without a body document no 413 or 415; body routes do", async (t) => {
  const get = responsesOf(doc, USER, "get");
  const post = responsesOf(doc, USERS, "post");
  t.notOk("413" in get || "415" in get);
  t.ok("413" in post && "415" in post);
});

t.test("registerOpenApi serves the document as JSON at GET /openapi.json", async (t) => {
  const app = Fastify();
  t.teardown(() => app.close());
  registerOpenApi(app, doc);
  const res = await app.inject({ method: "GET", url: "/openapi.json" });
  t.equal(res.statusCode, 200);
  t.match(res.headers["content-type"], /^application\/json/);
  t.same(res.json(), JSON.parse(JSON.stringify(doc)));
});

t.test(
  "a message named like another's style variant (Thing_CamelNames) gets its own component, and the document builds",
  async (t) => {
    const file = tableWithOwnProtos(
      t,
      {
        "v.proto": `syntax = "proto3";
package v.v1;
message Thing { string thing_name = 1; }
message Thing_CamelNames { string x = 1; }
message Holder { Thing thing = 1; Thing_CamelNames other = 2; }
`,
      },
      ["proto", "camel"]
        .map(
          (names) => `  - name: h.${names}
    method: GET
    path: /v1/${names}
    subject: svc.h.${names}
    request: v.v1.Holder
    response: v.v1.Holder
    json: { names: ${names} }
`,
        )
        .join(""),
    );
    const loaded = loadConfigAndProtos(file);
    const built = buildOpenApiDocument(loaded.config, loaded.root);
    t.same(await openApiErrors(built), []);
    t.same(danglingRefs(built), []);
    const names = Object.keys(built.components?.schemas ?? {}).filter((n) => n.startsWith("v.v1."));
    t.ok(names.includes("v.v1.Thing_CamelNames"), names.join(", "));
    t.ok(names.includes("v.v1.Thing-CamelNames"), "the variant, after a - no protobuf name holds");
  },
);
