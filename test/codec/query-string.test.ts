/** The router's query string parser: Fastify's default results, plus what it could not decode. */
import t from "tap";
import { parseQueryString, UNDECODABLE } from "../../src/codec/index.js";

t.test("repeated keys make an array, + is a space, a bare key is empty", async (t) => {
  const query = parseQueryString("a=1&a=2&a=3&b&c+d=e+f&&g=%C3%A9%2B");
  t.same({ ...query }, { a: ["1", "2", "3"], b: "", "c d": "e f", g: "é+" });
  t.equal(query[UNDECODABLE], undefined, "everything decoded");
  t.same({ ...parseQueryString("") }, {});
});

t.test("__proto__ and constructor are plain keys", async (t) => {
  const query = parseQueryString("__proto__=x&constructor=y");
  t.equal(Object.getPrototypeOf(query), null);
  t.same(Object.keys(query), ["__proto__", "constructor"]);
  t.equal(Object.getOwnPropertyDescriptor(query, "__proto__")?.value, "x");
});

t.test("a value that is not percent-encoded UTF-8 stays raw and its key is listed", async (t) => {
  const query = parseQueryString("name=caf%E9&ok=1&cut=%E2%82&bad=%zz&bad=fine&k%zz=v");
  t.equal(query["name"], "caf%E9");
  t.same(query["bad"], ["%zz", "fine"]);
  t.equal(query["k%zz"], "v", "an undecodable key stays raw; its value decoded fine");
  t.same([...(query[UNDECODABLE] ?? [])].sort(), ["bad", "cut", "name"]);
});
