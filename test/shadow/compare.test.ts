import { join } from "node:path";
import t from "tap";
import { loadProtos } from "../../src/codec/index.js";
import {
  type Answer,
  compareAnswers,
  compileIgnorePaths,
  compileNormalizer,
  PLAIN_JSON,
} from "../../src/shadow/compare.js";

const root = loadProtos([join(import.meta.dirname, "..", "..", "proto")]);
const users = compileNormalizer(root, {
  name: "users.get",
  response: "users.v1.User",
  error: "users.v1.Error",
});
const orders = compileNormalizer(root, {
  name: "orders.get",
  response: "orders.v1.Order",
  error: undefined,
});
const NONE = compileIgnorePaths([]);

const json = (body: unknown, status = 200): Answer => ({
  status,
  body: typeof body === "string" ? body : JSON.stringify(body),
  contentType: "application/json; charset=utf-8",
});

t.test("the same user printed with different key order matches", async (t) => {
  const a = '{"id":"u1","email":"a@x.io","displayName":"Ann"}';
  const b = '{"displayName":"Ann","email":"a@x.io","id":"u1"}';
  t.same(compareAnswers(json(a), json(b), users, NONE), { result: "match" });
});

t.test("int64 as string or as number matches, also past 2^53", async (t) => {
  const a = '{"id":"u1","balanceCents":"9007199254740993"}';
  const b = '{"id":"u1","balanceCents":9007199254740993}';
  t.same(compareAnswers(json(a), json(b), users, NONE), { result: "match" });
  const c = '{"id":"u1","balanceCents":9007199254740992}';
  t.equal(compareAnswers(json(a), json(c), users, NONE).result, "mismatch", "no rounding");
});

t.test("an enum by name or by number matches", async (t) => {
  const a = { id: "u1", tier: "TIER_PRO" };
  const b = { id: "u1", tier: 2 };
  t.same(compareAnswers(json(a), json(b), users, NONE), { result: "match" });
});

t.test("default-valued fields emitted or omitted match", async (t) => {
  const a = {
    id: "u1",
    email: "",
    verified: false,
    tier: "TIER_UNSPECIFIED",
    tags: [],
    labels: {},
  };
  t.same(compareAnswers(json(a), json({ id: "u1" }), users, NONE), { result: "match" });
});

t.test(
  "a value spelled as another JSON type is a mismatch: a 32-bit int or a double as a string, null for a list, a bool or a map",
  async (t) => {
    const numbers = compareAnswers(
      json({ id: "o1", items: [{ sku: "a", quantity: 1 }], discountRate: 0.05 }),
      json({ id: "o1", items: [{ sku: "a", quantity: "1" }], discount_rate: "0.05" }),
      orders,
      NONE,
    );
    t.match(numbers, {
      result: "mismatch",
      diffs: [
        { path: "$.items[0].quantity", kind: "changed", primary: 1, mirror: "1" },
        { path: "$.discountRate", kind: "changed", primary: 0.05, mirror: "0.05" },
      ],
    });
    t.equal(numbers.result === "mismatch" && numbers.diffs.length, 2);
    const nulls = compareAnswers(
      json({ id: "u1", tags: [], verified: false, labels: {} }),
      json({ id: "u1", tags: null, verified: null, labels: null }),
      users,
      NONE,
    );
    t.match(nulls, {
      result: "mismatch",
      diffs: [
        { path: "$.tags", primary: "[]", mirror: null },
        { path: "$.verified", primary: false, mirror: null },
        { path: "$.labels", primary: "{}", mirror: null },
      ],
    });
    t.same(
      compareAnswers(json({ id: "u1", tags: null }), json({ id: "u1" }), users, NONE),
      { result: "match" },
      "null or absent: a default printed or not, as before",
    );
    t.same(
      compareAnswers(
        json({ id: "o1", discountRate: "NaN", totalCents: "5" }),
        json({ id: "o1", discountRate: "NaN", totalCents: 5 }),
        orders,
        NONE,
      ),
      { result: "match" },
      "int64 as string or number, and NaN (a string in ProtoJSON), still match",
    );
    const items = (quantity: unknown) => json({ id: "o1", items: [{ sku: "a", quantity }] });
    for (const path of ["$.items[*]", "$.items[0]", "$.items[*].quantity"]) {
      t.same(
        compareAnswers(items(1), items("1"), orders, compileIgnorePaths([path])),
        { result: "match" },
        `ignored by ${path}`,
      );
    }
    const address = compareAnswers(
      json({ id: "u1", address: null }),
      json({ id: "u1", address: {} }),
      users,
      NONE,
    );
    t.equal(
      address.result === "mismatch" && address.diffs.filter((d) => d.path === "$.address").length,
      1,
      "a null against a message is one diff, not one from each check",
    );
  },
);

t.test("proto names and lowerCamel names match, nested too", async (t) => {
  const a = {
    display_name: "Ann",
    address: { country_code: "FR" },
    created_at: "2024-01-02T03:04:05Z",
  };
  const b = {
    displayName: "Ann",
    address: { countryCode: "FR" },
    createdAt: "2024-01-02T03:04:05.000Z",
  };
  t.same(compareAnswers(json(a), json(b), users, NONE), { result: "match" });
});

t.test("a legacy-style body matches its canonical ProtoJSON twin", async (t) => {
  const legacy =
    '{"tier":2,"balance_cents":150,"id":"u1","verified":false,"tags":[],"nickname":null}';
  const nats = '{"id":"u1","tier":"TIER_PRO","balanceCents":"150"}';
  t.same(compareAnswers(json(legacy), json(nats), users, NONE), { result: "match" });
});

t.test("a changed email is a mismatch on $.email with both values", async (t) => {
  const got = compareAnswers(
    json({ id: "u1", email: "a@x.io" }),
    json({ id: "u1", email: "b@x.io" }),
    users,
    NONE,
  );
  t.same(got, {
    result: "mismatch",
    diffs: [{ path: "$.email", kind: "changed", primary: "a@x.io", mirror: "b@x.io" }],
    truncated: false,
  });
});

t.test("a field only one side has is missing or extra, array items by index", async (t) => {
  const got = compareAnswers(
    json({ id: "u1", tags: ["a", "b", "c"], email: "a@x.io" }),
    json({ id: "u1", tags: ["a", "b", "x", "d"] }),
    users,
    NONE,
  );
  t.same(got, {
    result: "mismatch",
    diffs: [
      { path: "$.email", kind: "missing", primary: "a@x.io" },
      { path: "$.tags[2]", kind: "changed", primary: "c", mirror: "x" },
      { path: "$.tags[3]", kind: "extra", mirror: "d" },
    ],
    truncated: false,
  });
});

t.test("different statuses are a mismatch on $status alone", async (t) => {
  const got = compareAnswers(json({ id: "u1" }), json({ error: "not_found" }, 404), users, NONE);
  t.same(got, {
    result: "mismatch",
    diffs: [{ path: "$status", kind: "changed", primary: 200, mirror: 404 }],
    truncated: false,
  });
});

t.test("error bodies are normalized through the route's error type", async (t) => {
  const a = json('{"error":"not_found","message":""}', 404);
  const b = json('{"error":"not_found"}', 404);
  t.same(compareAnswers(a, b, users, NONE), { result: "match" });
  const c = json('{"error":"gone"}', 404);
  t.match(compareAnswers(a, c, users, NONE), { diffs: [{ path: "$.error", kind: "changed" }] });
});

t.test("a body that doesn't fit the type is compared as plain JSON", async (t) => {
  const a = '{"id":"u1","unknown_field":1,"balance_cents":5}';
  t.same(
    compareAnswers(json(a), json('{"balance_cents":5,"unknown_field":1,"id":"u1"}'), users, NONE),
    {
      result: "match",
    },
  );
  // Plain JSON: no name or int64 style folding, so these now differ.
  const got = compareAnswers(
    json(a),
    json('{"id":"u1","unknown_field":1,"balance_cents":"5"}'),
    users,
    NONE,
  );
  t.match(got, {
    result: "mismatch",
    diffs: [{ path: "$.balance_cents", primary: 5, mirror: "5" }],
  });
});

t.test("compare.ignore drops $.updated_at and $.items[*].id before diffing", async (t) => {
  const ignore = compileIgnorePaths(["$.updated_at", "$.items[*].id"]);
  const a = {
    updated_at: "t1",
    items: [
      { id: 1, sku: "a" },
      { id: 2, sku: "b" },
    ],
  };
  const b = {
    updated_at: "t2",
    items: [
      { id: 7, sku: "a" },
      { id: 8, sku: "b" },
    ],
  };
  t.same(compareAnswers(json(a), json(b), PLAIN_JSON, ignore), { result: "match" });
  t.same(compareAnswers(json(a), json({ items: b.items }), PLAIN_JSON, ignore), {
    result: "match",
  });
  const c = {
    updated_at: "t2",
    items: [
      { id: 7, sku: "a" },
      { id: 8, sku: "z" },
    ],
  };
  t.match(compareAnswers(json(a), json(c), PLAIN_JSON, ignore), {
    diffs: [{ path: "$.items[1].sku", primary: "b", mirror: "z" }],
  });
  t.match(
    compareAnswers(json(a), json(b), PLAIN_JSON, NONE),
    { result: "mismatch" },
    "not ignored",
  );
});

t.test("ignore paths in proto names apply to the normalized lowerCamel body", async (t) => {
  const ignore = compileIgnorePaths(["$.placed_at", "$.items[*].unit_price_cents"]);
  const a = {
    id: "o1",
    placed_at: "2024-01-01T00:00:00Z",
    items: [{ sku: "a", unit_price_cents: 5 }],
  };
  const b = {
    id: "o1",
    placedAt: "2024-06-01T00:00:00Z",
    items: [{ sku: "a", unitPriceCents: "6" }],
  };
  t.same(compareAnswers(json(a), json(b), orders, ignore), { result: "match" });
  t.match(compareAnswers(json(a), json(b), orders, NONE), { result: "mismatch" }, "not ignored");
});

t.test("an ignored array index leaves the other indexes compared", async (t) => {
  const ignore = compileIgnorePaths(["$.tags[0]"]);
  const got = compareAnswers(
    json({ tags: ["a", "b"] }),
    json({ tags: ["x", "y"] }),
    PLAIN_JSON,
    ignore,
  );
  t.same(got, {
    result: "mismatch",
    diffs: [{ path: "$.tags[1]", kind: "changed", primary: "b", mirror: "y" }],
    truncated: false,
  });
});

t.test("an ignore path outside the grammar is refused at compile time", async (t) => {
  for (const bad of ["updatedAt", "$", "$.a..b", "$.items[x]", "$.a b"]) {
    t.throws(() => compileIgnorePaths([bad]), { code: "TURNOUT_ERR_CONFIG" }, bad);
  }
});

t.test("non-JSON bodies are compared byte for byte", async (t) => {
  const text = (body: string | Buffer): Answer => ({
    status: 200,
    body,
    contentType: "text/plain",
  });
  t.same(compareAnswers(text("héllo"), text(Buffer.from("héllo")), PLAIN_JSON, NONE), {
    result: "match",
  });
  t.same(compareAnswers(text("a b"), text("a  b"), PLAIN_JSON, NONE), {
    result: "mismatch",
    diffs: [{ path: "$body", kind: "changed", primary: "a b", mirror: "a  b" }],
    truncated: false,
  });
});

t.test("JSON that doesn't parse is compared byte for byte", async (t) => {
  t.same(compareAnswers(json("{oops"), json("{oops"), users, NONE), { result: "match" });
  t.match(compareAnswers(json("{oops"), json("{oops}"), users, NONE), {
    diffs: [{ path: "$body", kind: "changed" }],
  });
});

t.test("empty bodies: both empty match, one empty is missing or extra", async (t) => {
  const empty: Answer = { status: 204, body: undefined, contentType: undefined };
  const emptyJson: Answer = { status: 204, body: "", contentType: "application/json" };
  t.same(compareAnswers(empty, emptyJson, users, NONE), { result: "match" });
  t.match(compareAnswers(empty, json("{}", 204), users, NONE), {
    diffs: [{ path: "$body", kind: "extra" }],
  });
  t.match(compareAnswers(json("{}", 204), empty, users, NONE), {
    diffs: [{ path: "$body", kind: "missing" }],
  });
});

t.test(
  "JSON on one side and another media type on the other is a $contentType mismatch",
  async (t) => {
    const html: Answer = { status: 200, body: "<p>hi</p>", contentType: "text/html" };
    t.same(compareAnswers(json({ id: "u1" }), html, users, NONE), {
      result: "mismatch",
      diffs: [
        {
          path: "$contentType",
          kind: "changed",
          primary: "application/json; charset=utf-8",
          mirror: "text/html",
        },
      ],
      truncated: false,
    });
  },
);

t.test("problem+json counts as JSON", async (t) => {
  const a: Answer = { status: 503, body: '{"a":1,"b":2}', contentType: "application/problem+json" };
  const b: Answer = { status: 503, body: '{"b":2,"a":1}', contentType: "application/json" };
  t.same(compareAnswers(a, b, users, NONE), { result: "match" });
});

t.test("diffs are capped at 20 and long values cut to 200 characters", async (t) => {
  const a: Record<string, string> = {};
  const b: Record<string, string> = {};
  for (let i = 0; i < 30; i++) {
    a[`k${i}`] = "x".repeat(500);
    b[`k${i}`] = "y";
  }
  const got = compareAnswers(json(a), json(b), PLAIN_JSON, NONE);
  if (got.result !== "mismatch") throw new Error("expected a mismatch");
  t.equal(got.diffs.length, 20);
  t.equal(got.truncated, true);
  t.equal(got.diffs[0]?.primary, `${"x".repeat(200)}…`);
  t.equal(got.diffs[0]?.mirror, "y");
});

t.test("an object only one side has is shown as its JSON text, marked as such", async (t) => {
  const got = compareAnswers(json({ address: { city: "Oslo" } }), json({}), users, NONE);
  t.same(got, {
    result: "mismatch",
    diffs: [
      { path: "$.address", kind: "missing", primary: '{"city":"Oslo"}', primaryIsJson: true },
    ],
    truncated: false,
  });
});

t.test("keys that are not plain names are bracket-quoted in paths", async (t) => {
  const got = compareAnswers(json({ "a.b": 1 }), json({ "a.b": 2 }), PLAIN_JSON, NONE);
  t.match(got, { diffs: [{ path: '$["a.b"]' }] });
});

t.test("compileNormalizer refuses a type the protos don't have", async (t) => {
  t.throws(
    () => compileNormalizer(root, { name: "r", response: "nope.v1.Missing", error: undefined }),
    { code: "TURNOUT_ERR_CONFIG" },
  );
});

t.test("byte-identical bodies match without being parsed or normalized", async (t) => {
  let normalized = 0;
  const counting = {
    ...users,
    normalize: (status: number, value: unknown) => {
      normalized++;
      return users.normalize(status, value);
    },
  };
  const body = '{"id":"u1","email":"a@x.io","display_name":"Ann"}';
  t.same(compareAnswers(json(body), json(body), counting, NONE), { result: "match" });
  t.equal(normalized, 0, "no normalization for the same bytes");
  const reordered = '{"email":"a@x.io","id":"u1","display_name":"Ann"}';
  t.same(compareAnswers(json(body), json(reordered), counting, NONE), { result: "match" });
  t.equal(normalized, 2, "different bytes are still parsed and normalized, both sides");
  t.match(compareAnswers(json(body, 200), json(body, 500), counting, NONE), {
    result: "mismatch",
    diffs: [{ path: "$status" }],
  });
});

t.test(
  "an ignored field the type lacks is removed before normalizing: int64 and enum spellings still match",
  async (t) => {
    const ignore = compileIgnorePaths(["$.links"]);
    const legacy = { id: "u1", balance_cents: 42, tier: 2, links: { self: "/u1" } };
    const nats = { id: "u1", balanceCents: "42", tier: "TIER_PRO" };
    t.same(compareAnswers(json(legacy), json(nats), users, ignore), { result: "match" });
    const changed = { ...nats, email: "b@x.io" };
    t.same(compareAnswers(json(legacy), json(changed), users, ignore), {
      result: "mismatch",
      diffs: [{ path: "$.email", kind: "extra", mirror: "b@x.io" }],
      truncated: false,
    });
  },
);

t.test(
  "an ignored array index beside an ignored legacy-only field keeps normalizing",
  async (t) => {
    const ignore = compileIgnorePaths(["$.links", "$.tags[0]"]);
    const legacy = { id: "u1", balance_cents: 42, tags: ["a", "b"], links: {} };
    const nats = { id: "u1", balanceCents: "42", tags: ["x", "b"] };
    t.same(compareAnswers(json(legacy), json(nats), users, ignore), { result: "match" });
    t.match(compareAnswers(json(legacy), json({ ...nats, tags: ["x", "c"] }), users, ignore), {
      result: "mismatch",
      diffs: [{ path: "$.tags[1]", primary: "b", mirror: "c" }],
    });
  },
);
