/** HTTP -> request message: body, path and query binding as grpc-gateway does it. */
import t from "tap";
import { compileRouteCodec, parseJsonBody, type RouteCodec } from "../../src/codec/index.js";
import { CANONICAL, caught, root } from "./fixtures/setup.js";

type Spec = Parameters<typeof compileRouteCodec>[1];

function route(overrides: Partial<Spec>): RouteCodec {
  return compileRouteCodec(root, {
    name: "search",
    request: "codectest.v1.SearchRequest",
    response: "codectest.v1.SearchRequest",
    error: undefined,
    body: undefined,
    pathParams: ["tenant"],
    json: CANONICAL,
    ...overrides,
  });
}

/** The request message a route builds, printed as canonical JSON for easy comparison. */
function bound(
  codec: RouteCodec,
  params: Record<string, string>,
  query: Record<string, string | string[]>,
  body?: unknown,
): unknown {
  const bytes = codec.encodeRequest(params, query, body);
  return JSON.parse(codec.decodeResponse(bytes)); // response type = request type here
}

const search = route({});

t.test("a path param binds to the field of the same name", async (t) => {
  t.same(bound(search, { tenant: "acme" }, {}), { tenant: "acme" });
});

t.test("a dotted path param binds to a nested field", async (t) => {
  const codec = route({ pathParams: ["tenant", "filter.name"] });
  t.same(bound(codec, { tenant: "a", "filter.name": "n" }, {}), {
    tenant: "a",
    filter: { name: "n" },
  });
});

t.test("query params bind by proto or lowerCamel name, converted per field type", async (t) => {
  t.same(
    bound(
      search,
      { tenant: "a" },
      {
        page_size: "10",
        exact: "true",
        sinceId: "9007199254740993",
        color: "GREEN",
        minScore: "0.5",
        cursor: "-_-_",
        after: "2024-05-01T12:30:00+02:00",
        within: "1.5s",
        limit: "5",
        fields: "tenant,filter.name,pageSize",
      },
    ),
    {
      tenant: "a",
      pageSize: 10,
      color: "GREEN",
      exact: true,
      sinceId: "9007199254740993",
      after: "2024-05-01T10:30:00Z",
      within: "1.500s",
      limit: 5,
      fields: "tenant,filter.name,pageSize",
      cursor: "+/+/",
      minScore: 0.5,
    },
  );
});

t.test("an enum query param is taken by name or by number", async (t) => {
  t.same(bound(search, {}, { color: "1" }), { color: "RED" });
});

t.test("a repeated query key fills a repeated field; one key fills it with one item", async (t) => {
  t.same(bound(search, {}, { tags: ["a", "b"], colors: ["RED", "2"] }), {
    tags: ["a", "b"],
    colors: ["RED", "GREEN"],
  });
  t.same(bound(search, {}, { tags: "solo" }), { tags: ["solo"] });
});

t.test("?tags=a,b is one item, not a list", async (t) => {
  t.same(bound(search, {}, { tags: "a,b" }), { tags: ["a,b"] });
});

t.test("dotted query keys bind nested fields, by proto or lowerCamel names", async (t) => {
  t.same(
    bound(search, {}, { "filter.name": "x", "filter.count": "3", "payload.customName": "c" }),
    {
      filter: { name: "x", count: 3 },
      payload: { customName: "c" },
    },
  );
  t.same(bound(search, {}, { "filter.child.count": "4" }), { filter: { child: { count: 4 } } });
});

t.test("unknown query params are ignored, as grpc-gateway does", async (t) => {
  t.same(bound(search, { tenant: "a" }, { utm_source: "mail", "filter.nope": "x", "x.y.z": "1" }), {
    tenant: "a",
  });
});

t.test("a query param for a field bound by the path is ignored: the path wins", async (t) => {
  t.same(bound(search, { tenant: "path" }, { tenant: "query" }), { tenant: "path" });
});

t.test("a repeated key on a singular field is a 400 naming the param", async (t) => {
  const error = caught(() => search.encodeRequest({}, { page_size: ["1", "2"] }, undefined));
  t.equal(error.code, "TURNOUT_ERR_BAD_PARAM");
  t.equal(error.status, 400);
  t.equal(error.field, "page_size");
  t.match(error.message, /parameter "page_size": given 2 times, but page_size is not repeated/);
});

t.test("a query value that doesn't fit its field is a 400 naming the param", async (t) => {
  const cases: Array<[Record<string, string>, string, RegExp]> = [
    [{ pageSize: "1.5" }, "pageSize", /invalid int32 value: "1\.5"/],
    [{ page_size: "abc" }, "page_size", /invalid int32 value: "abc"/],
    [{ page_size: "" }, "page_size", /invalid int32 value: ""/],
    [{ page_size: "2147483648" }, "page_size", /int32 value out of range/],
    [{ exact: "yes" }, "exact", /invalid bool value: "yes"/],
    [{ color: "BLUE" }, "color", /unknown enum codectest\.v1\.Color value name "BLUE"/],
    [{ since_id: "99999999999999999999" }, "since_id", /int64 value out of range/],
    [{ cursor: "***" }, "cursor", /invalid base64/],
    [{ after: "2024-05-01" }, "after", /invalid Timestamp/],
    [{ within: "5m" }, "within", /invalid Duration/],
    [{ limit: "x" }, "limit", /invalid int32 value/],
    [{ min_score: "fast" }, "min_score", /invalid number/],
    [{ "filter.count": "x" }, "filter.count", /invalid int32 value/],
    [{ since_id: "9".repeat(50000) }, "since_id", /int64 value out of range/],
  ];
  for (const [query, param, detail] of cases) {
    const error = caught(() => search.encodeRequest({}, query, undefined));
    t.equal(error.code, "TURNOUT_ERR_BAD_PARAM", param);
    t.equal(error.field, param, param);
    t.ok(error.message.startsWith(`parameter "${param}": `), error.message);
    t.match(error.message, detail, error.message);
  }
});

t.test("a path param that doesn't fit its field is a 400 naming the param", async (t) => {
  const codec = route({ pathParams: ["tenant", "filter.count"] });
  const error = caught(() =>
    codec.encodeRequest({ tenant: "a", "filter.count": "ten" }, {}, undefined),
  );
  t.equal(error.code, "TURNOUT_ERR_BAD_PARAM");
  t.equal(error.field, "filter.count");
  t.match(error.message, /parameter "filter\.count": invalid int32 value: "ten"/);
});

t.test(
  "an empty path param is a 404 naming the param: no route serves an empty segment",
  async (t) => {
    const cases: Record<string, string>[] = [{ tenant: "" }, { tenant: "a", "filter.count": "" }];
    for (const params of cases) {
      const codec = route({ pathParams: Object.keys(params) });
      const error = caught(() => codec.encodeRequest(params, {}, undefined));
      t.equal(error.code, "TURNOUT_ERR_NOT_FOUND");
      t.equal(error.status, 404);
      t.equal(error.field, Object.keys(params).at(-1));
      t.match(error.message, /path parameter "[a-z.]+" is empty/);
    }
  },
);

t.test("a FieldMask query param takes lowerCamel or snake_case paths, not a mix", async (t) => {
  t.same(bound(search, {}, { fields: "page_size,filter.name,pageSize" }), {
    fields: "pageSize,filter.name,pageSize",
  });
  for (const mixed of ["PageSize", "page_Size", "_page"]) {
    const error = caught(() => search.encodeRequest({}, { fields: mixed }, undefined));
    t.equal(error.code, "TURNOUT_ERR_BAD_PARAM", mixed);
    t.match(error.message, /invalid FieldMask path .*expected lowerCamel or snake_case names/);
  }
});

t.test("query keys for message or map fields are a 400, not silently dropped", async (t) => {
  for (const key of ["filter", "attrs", "payload.inner", "tags.x"]) {
    const error = caught(() => search.encodeRequest({}, { [key]: "x" }, undefined));
    t.equal(error.code, "TURNOUT_ERR_BAD_PARAM", key);
    t.equal(error.field, key);
  }
});

t.test("map entries bind from key[mapkey]=value, as grpc-gateway reads them", async (t) => {
  t.same(bound(search, { tenant: "a" }, { "attrs[team]": "core", "attrs[tier]": "gold" }), {
    tenant: "a",
    attrs: { team: "core", tier: "gold" },
  });
  t.same(
    bound(
      route({ request: "codectest.v1.Scalars", response: "codectest.v1.Scalars", pathParams: [] }),
      {},
      { "by_int[-7]": "x", "byName[n]": "3" },
    ),
    { byInt: { "-7": "x" }, byName: { n: 3 } },
    "map keys and values converted per their types, by either name",
  );
  const cases: Array<[Record<string, string | string[]>, string, RegExp]> = [
    [{ attrs: "x" }, "attrs", /attrs is a map: set its entries as attrs\[KEY\]=VALUE/],
    [{ "attrs[a]": ["x", "y"] }, "attrs[a]", /given 2 times/],
    [{ "tags[0]": "x" }, "tags[0]", /tags is not a map field/],
  ];
  for (const [query, field, message] of cases) {
    const error = caught(() => search.encodeRequest({}, query, undefined));
    t.equal(error.code, "TURNOUT_ERR_BAD_PARAM", field);
    t.equal(error.field, field);
    t.match(error.message, message, field);
  }
  const badKey = caught(() =>
    route({
      request: "codectest.v1.Scalars",
      response: "codectest.v1.Scalars",
      pathParams: [],
    }).encodeRequest({}, { "by_int[x]": "v" }, undefined),
  );
  t.match(badKey, { code: "TURNOUT_ERR_BAD_PARAM", field: "by_int[x]" });
});

t.test("two members of one oneof through query params is a 400", async (t) => {
  const error = caught(() => search.encodeRequest({}, { user_id: "u", groupId: "g" }, undefined));
  t.equal(error.code, "TURNOUT_ERR_BAD_PARAM");
  t.match(
    error.message,
    /parameter "groupId": oneof target has two members set: user_id and group_id/,
  );
});

t.test("the same singular field under both its names in the query is a 400", async (t) => {
  const error = caught(() =>
    search.encodeRequest({}, { page_size: "1", pageSize: "2" }, undefined),
  );
  t.equal(error.code, "TURNOUT_ERR_BAD_PARAM");
  t.match(error.message, /page_size is given twice/);
});

t.test('body "*" binds the whole message and ignores query params, even bad ones', async (t) => {
  const codec = route({ body: "*" });
  t.same(
    bound(
      codec,
      { tenant: "a" },
      { page_size: "not a number", tags: "q" },
      parseJsonBody('{"pageSize":3,"tags":["b"]}'),
    ),
    { tenant: "a", tags: ["b"], pageSize: 3 },
  );
});

t.test('body "*": the path param overrides the same field in the body', async (t) => {
  const codec = route({ body: "*" });
  t.same(bound(codec, { tenant: "path" }, {}, { tenant: "body", exact: true }), {
    tenant: "path",
    exact: true,
  });
});

t.test('body "*" with no body at all binds the path params only', async (t) => {
  t.same(bound(route({ body: "*" }), { tenant: "a" }, {}, undefined), { tenant: "a" });
});

t.test('body "*": body errors are 400 BAD_FIELD with the JSON path', async (t) => {
  const error = caught(() =>
    route({ body: "*" }).encodeRequest(
      { tenant: "a" },
      {},
      parseJsonBody('{"filter":{"count":"x"}}'),
    ),
  );
  t.equal(error.code, "TURNOUT_ERR_BAD_FIELD");
  t.equal(error.field, "$.filter.count");
  t.match(error.message, /^field "\$\.filter\.count": invalid int32 value: "x"$/);
});

t.test(
  "body bound to one field: the body is that field; query still binds the others",
  async (t) => {
    const codec = route({ body: "payload" });
    t.same(
      bound(
        codec,
        { tenant: "a" },
        { page_size: "2", "payload.i32": "ignored" },
        parseJsonBody('{"i32":7,"text":"t"}'),
      ),
      { tenant: "a", pageSize: 2, payload: { i32: 7, text: "t" } },
    );
  },
);

t.test("body bound to one field: its errors have paths relative to the body", async (t) => {
  const error = caught(() =>
    route({ body: "payload" }).encodeRequest({}, {}, parseJsonBody('{"numbers":[1,"x"]}')),
  );
  t.equal(error.field, "$.numbers[1]");
});

t.test("body bound to a repeated field takes an array", async (t) => {
  t.same(bound(route({ body: "tags" }), {}, {}, ["a", "b"]), { tags: ["a", "b"] });
});

t.test(
  "body bound to a Value or NullValue field: a body of JSON null sets null_value, as in a body * object; no body leaves it unset",
  async (t) => {
    const nullable = (body: string) =>
      route({
        request: "codectest.v1.NullableBody",
        response: "codectest.v1.NullableBody",
        body,
        pathParams: [],
      });
    const whole = nullable("*");
    for (const [field, key] of [
      ["value", "value"],
      ["picked", "picked"], // a Value in a oneof
      ["maybe_null", "maybeNull"], // optional google.protobuf.NullValue
    ] as const) {
      const codec = nullable(field);
      const bytes = codec.encodeRequest({}, {}, parseJsonBody("null"));
      t.same(JSON.parse(codec.decodeResponse(bytes)), { [key]: null }, field);
      t.same(
        bytes,
        whole.encodeRequest({}, {}, parseJsonBody(`{"${key}":null}`)),
        `${field}: as *`,
      );
      t.same(bound(codec, {}, {}, undefined), {}, `${field}: no body`);
    }
    for (const field of ["inner", "values"]) {
      t.same(bound(nullable(field), {}, {}, parseJsonBody("null")), {}, `${field}: null is unset`);
    }
  },
);

t.test("a route without body: no body, null, empty object are fine", async (t) => {
  for (const body of [undefined, null, {}]) {
    t.same(bound(search, { tenant: "a" }, {}, body), { tenant: "a" }, JSON.stringify(body));
  }
});

t.test("a route without body: a non-empty body is a 400, not silently dropped", async (t) => {
  const error = caught(() => search.encodeRequest({ tenant: "a" }, {}, { pageSize: 3 }));
  t.equal(error.code, "TURNOUT_ERR_BAD_JSON");
  t.equal(error.status, 400);
  t.match(error.message, /route search takes no request body/);
  for (const body of ["", 0, false, []]) {
    const other = caught(() => search.encodeRequest({ tenant: "a" }, {}, body));
    t.equal(other.code, "TURNOUT_ERR_BAD_JSON", `the JSON ${JSON.stringify(body)} is a body too`);
  }
});

t.test(
  "a param that names no field, or no scalar field, is a config error at compile time",
  async (t) => {
    for (const [overrides, detail] of [
      [
        { pathParams: ["nope"] },
        /path parameter "nope" is not a field of codectest\.v1\.SearchRequest/,
      ],
      [
        { pathParams: ["filter"] },
        /path parameter "filter" is a codectest\.v1\.Inner field, which has no string form/,
      ],
      [{ pathParams: ["tags"] }, /path parameter "tags" names a repeated or map field/],
      [{ pathParams: ["tenant.x"] }, /tenant is not a singular message field/],
      [{ body: "nope" }, /body "nope" is not a field/],
      [{ request: "codectest.v1.Missing" }, /request type codectest\.v1\.Missing is not a message/],
    ] as Array<[Partial<Spec>, RegExp]>) {
      const error = caught(() => route(overrides));
      t.equal(error.code, "TURNOUT_ERR_CONFIG");
      t.match(error.message, detail, error.message);
    }
  },
);

t.test("the example route users.get binds region and id from the path", async (t) => {
  const codec = compileRouteCodec(root, {
    name: "users.get",
    request: "users.v1.GetUserRequest",
    response: "users.v1.User",
    error: "users.v1.Error",
    body: undefined,
    pathParams: ["region", "id"],
    json: CANONICAL,
  });
  const bytes = codec.encodeRequest(
    { region: "eu", id: "u1" },
    { fields: "displayName,email" },
    undefined,
  );
  t.same(codec.requestType.toObject(codec.requestType.decode(bytes)), {
    region: "eu",
    id: "u1",
    fields: { paths: ["display_name", "email"] },
  });
});
