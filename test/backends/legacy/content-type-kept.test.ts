/**
 * contentTypeKept says which Content-Type values Fastify's reply.send() keeps
 * on a Buffer body: the legacy answer's Buffer goes as a stream otherwise, so
 * its header reaches the client as sent. Held against Fastify's own parser,
 * so an upgrade that turns a value down is caught here.
 */
import { createRequire } from "node:module";
import fc from "fast-check";
import t from "tap";
import { contentTypeKept } from "../../../src/backends/legacy/headers.js";

/** Fastify's internal ContentType (lib/content-type.js), whose verdict reply.send() follows. */
const { from } = createRequire(import.meta.url)("fastify/lib/content-type.js") as {
  from(value: unknown): { isEmpty: boolean };
};
const fastifyKeeps = (value: string | string[] | undefined) => !from(value).isEmpty;

const KEPT = [
  "application/json",
  "application/json; charset=utf-8",
  "Application/JSON;charset=UTF-8",
  "application/problem+json",
  "text/html; charset=ISO-8859-1",
  "application/vnd.api+json;version=2",
  "application/json;",
  "application/json; charset",
  "application/json ; charset=utf-8",
  " application/json",
  "application/json ",
  'multipart/form-data; boundary="a;b"',
];
const REPLACED = [
  "json",
  "text",
  "*",
  "",
  "application/ json",
  "application /json",
  "application/",
  "/json",
  "application/json/x",
  "application/json x",
  "application/j\u00e9son",
  "json; charset=utf-8",
  "application; type=a/b",
  "undefined",
];

t.test("the values Fastify keeps on a Buffer are kept, the ones it replaces are not", async (t) => {
  for (const value of KEPT) {
    t.ok(fastifyKeeps(value), `Fastify keeps ${JSON.stringify(value)}`);
    t.ok(contentTypeKept(value), `kept: ${JSON.stringify(value)}`);
  }
  for (const value of REPLACED) {
    t.notOk(fastifyKeeps(value), `Fastify replaces ${JSON.stringify(value)}`);
    t.notOk(contentTypeKept(value), `not kept: ${JSON.stringify(value)}`);
  }
});

t.test("no Content-Type, or two header lines of one, is not kept", async (t) => {
  for (const value of [undefined, ["application/json", "application/json"]]) {
    t.notOk(fastifyKeeps(value), `Fastify replaces ${JSON.stringify(value)}`);
    t.notOk(contentTypeKept(value), JSON.stringify(value));
  }
});

t.test("a value found kept once does not make the next, different one kept", async (t) => {
  t.ok(contentTypeKept("text/plain"));
  t.ok(contentTypeKept("text/plain"), "the same again");
  t.notOk(contentTypeKept("text"));
  t.notOk(contentTypeKept(""), "empty, after a kept value");
  t.ok(contentTypeKept("text/plain"));
});

t.test(
  "any value made of a media type's characters is kept exactly when Fastify keeps it",
  async (t) => {
    const char = fc.constantFrom(...'ajJ/;=+-.* \t"\u00e9,'.split(""));
    fc.assert(
      fc.property(fc.string({ unit: char, maxLength: 16 }), (value) => {
        // Alternated with a kept value, so the memo of the last one is crossed too.
        contentTypeKept("application/json");
        return contentTypeKept(value) === fastifyKeeps(value);
      }),
      { numRuns: 20_000 },
    );
    t.pass("20,000 values agree");
  },
);
