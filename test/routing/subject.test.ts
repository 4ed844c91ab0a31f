import t from "tap";
import { compileSubject, subjectParams } from "../../src/routing/subject.js";

t.test("a template without params is returned as is", async (t) => {
  t.equal(compileSubject("svc.users.get")({}), "svc.users.get");
});

t.test("params fill their tokens in place", async (t) => {
  const build = compileSubject("svc.users.{region}.get.{tenant}");
  t.equal(build({ region: "eu-west", tenant: "acme_1" }), "svc.users.eu-west.get.acme_1");
  t.same(subjectParams("svc.users.{region}.get.{tenant}"), ["region", "tenant"]);
});

t.test("a value that would change the subject's shape is refused naming the param", async (t) => {
  const build = compileSubject("svc.users.{region}.get");
  for (const bad of [
    "",
    "eu.west",
    "*",
    ">",
    "eu*",
    "a b",
    "tab\there",
    "cr\r",
    "nl\n",
    "nul\u0000",
    "nbsp\u00a0",
    "del\u007f",
  ]) {
    t.throws(
      () => build({ region: bad }),
      { name: "TurnoutError", code: "TURNOUT_ERR_BAD_SUBJECT_TOKEN", status: 400, field: "region" },
      `refuses ${JSON.stringify(bad)}`,
    );
  }
  t.throws(() => build({}), { code: "TURNOUT_ERR_BAD_SUBJECT_TOKEN" }, "refuses a missing value");
});

t.test("unicode letters and punctuation other than the unsafe set are accepted", async (t) => {
  const build = compileSubject("svc.{name}");
  t.equal(build({ name: "zürich-1/a:b" }), "svc.zürich-1/a:b");
});
