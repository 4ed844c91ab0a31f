import t from "tap";
import { compileStickyKey, cookieValue } from "../../src/routing/sticky.js";

const req = (over: Partial<Parameters<ReturnType<typeof compileStickyKey>>[0]> = {}) => ({
  headers: {},
  query: {},
  ip: "10.0.0.1",
  ...over,
});

t.test("header: reads the lower-cased header, first value of a repeated one", async (t) => {
  const key = compileStickyKey({ kind: "header", name: "X-User-Id" });
  t.equal(key(req({ headers: { "x-user-id": "u-7" } })), "u-7");
  t.equal(key(req({ headers: { "x-user-id": ["u-1", "u-2"] } as never })), "u-1");
  t.equal(key(req({ headers: { "x-other": "u-7" } })), undefined);
  t.equal(key(req({ headers: { "x-user-id": "" } })), undefined, "empty counts as absent");
});

t.test("cookie: finds one cookie by exact name among several", async (t) => {
  const key = compileStickyKey({ kind: "cookie", name: "sid" });
  t.equal(key(req({ headers: { cookie: "sid=abc" } })), "abc");
  t.equal(key(req({ headers: { cookie: "a=1; sid=abc; b=2" } })), "abc");
  t.equal(key(req({ headers: { cookie: "a=1;sid=abc" } })), "abc");
  t.equal(key(req({ headers: { cookie: "xsid=no; sid=yes" } })), "yes", "a longer name is not it");
  t.equal(
    key(req({ headers: { cookie: "a=sid=no" } })),
    undefined,
    "a value holding sid= is not it",
  );
  t.equal(key(req({ headers: { cookie: 'sid="quoted"' } })), "quoted");
  t.equal(key(req({ headers: { cookie: "sid=" } })), undefined);
  t.equal(key(req({ headers: {} })), undefined);
});

t.test("cookieValue trims trailing whitespace before the next cookie", async (t) => {
  t.equal(cookieValue("sid=abc ; b=2", "sid"), "abc");
  t.equal(cookieValue("b=2;\tsid=abc", "sid"), "abc");
});

t.test("query: reads the first value of the parameter", async (t) => {
  const key = compileStickyKey({ kind: "query", name: "tenant" });
  t.equal(key(req({ query: { tenant: "acme" } })), "acme");
  t.equal(key(req({ query: { tenant: ["acme", "other"] } })), "acme");
  t.equal(key(req({ query: { other: "acme" } })), undefined);
});

t.test("ip: the request's address", async (t) => {
  const key = compileStickyKey({ kind: "ip" });
  t.equal(key(req({ ip: "192.0.2.4" })), "192.0.2.4");
  t.equal(key(req({ ip: "2001:db8::7" })), "2001:db8::7");
});

t.test(
  "ip: an IPv4-mapped address is its IPv4 address, so a replica on :: and one on 0.0.0.0 agree",
  async (t) => {
    const key = compileStickyKey({ kind: "ip" });
    t.equal(key(req({ ip: "::ffff:192.0.2.4" })), "192.0.2.4");
    t.equal(key(req({ ip: "::ffff:c000:204" })), "::ffff:c000:204", "hex form left as it is");
  },
);

t.test("random: no key, whatever the request holds", async (t) => {
  const key = compileStickyKey({ kind: "random" });
  t.equal(
    key(req({ headers: { "x-user-id": "u-1", cookie: "sid=a" }, query: { q: "1" } })),
    undefined,
  );
});
