import { join } from "node:path";
import t from "tap";
import { loadConfig } from "../../src/config/load.js";
import { FIXTURES, problemsOf } from "./fixtures/helpers.js";

const FILE = join(FIXTURES, "many-problems.yaml");

/** Each problem the fixture holds: line, route, key and what the message must say. */
const EXPECTED = [
  {
    line: 6,
    route: undefined,
    key: "nats.auth.token",
    message: /inline secret.*\{env: VAR_NAME\}/,
  },
  {
    line: 15,
    route: "users.get",
    key: "routes[0].subject",
    message: /\{region\} names no path param/,
  },
  {
    line: 17,
    route: "users.get",
    key: "routes[0].response",
    message: /no message type "users.v1.Usr".*did you mean "users.v1.User"/,
  },
  { line: 19, route: "users.get", key: "routes[0].cutover.nats", message: /at most 100, got 150/ },
  {
    line: 20,
    route: "users.get",
    key: "routes[0].timout",
    message: /unknown key "timout" \(did you mean "timeout"\?\)/,
  },
  {
    line: 21,
    route: "users.get",
    key: "routes[1].name",
    message: /"users.get" is already used by the route at line 12/,
  },
  {
    line: 23,
    route: "users.get",
    key: "routes[1].path",
    message: /clashes with GET \/v1\/users\/:id/,
  },
  {
    line: 23,
    route: "users.get",
    key: "routes[1].path",
    message: /:user matches no field of users.v1.GetUserRequest/,
  },
  {
    line: 36,
    route: "users.create",
    key: "routes[2].cutover.shadow",
    message: /non-idempotent.*shadowWrites: true/,
  },
  { line: 37, route: "routes[3]", key: "routes[3].name", message: /is required/ },
];

t.test("loadConfig reports every problem of the file at once, in file order", async (t) => {
  const problems = problemsOf(t, () => loadConfig(FILE));
  t.equal(problems.length, EXPECTED.length, "no problem missing, none extra");
  EXPECTED.forEach((expected, i) => {
    const problem = problems[i]!;
    t.match(
      problem.location,
      new RegExp(`many-problems\\.yaml:${expected.line}:\\d+$`),
      expected.key,
    );
    t.equal(problem.route, expected.route, `${expected.key}: route`);
    t.equal(problem.key, expected.key);
    t.match(problem.message, expected.message, expected.key);
  });
});

t.test("a problem's column points at the offending value", async (t) => {
  const problems = problemsOf(t, () => loadConfig(FILE));
  const percent = problems.find((p) => p.key === "routes[0].cutover.nats");
  // `    cutover: { nats: 150 }`: 150 starts in column 22.
  t.match(percent?.location, /:19:22$/);
});
