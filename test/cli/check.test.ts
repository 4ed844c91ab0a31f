import { spawnSync } from "node:child_process";
import { join } from "node:path";
import t from "tap";
import { runCheck } from "../../src/cli/check.js";
import { EXAMPLE_ROUTES, FIXTURES, tableWithOwnProtos } from "../config/fixtures/helpers.js";
import { captured } from "../helpers/cli-output.js";

/** Runs `turnout check` with captured output. */
async function check(argv: string[], env: NodeJS.ProcessEnv = {}) {
  return captured((out) => runCheck(argv, out, env));
}

t.test("check on the example prints the route and type counts and exits 0", async (t) => {
  const result = await check(["--config", EXAMPLE_ROUTES]);
  t.equal(result.code, 0);
  t.equal(result.stdout, "ok: 5 routes, 13 proto types\n");
  t.equal(result.stderr, "");
});

t.test("check reads the table named by TURNOUT_CONFIG when --config is absent", async (t) => {
  const result = await check([], { TURNOUT_CONFIG: EXAMPLE_ROUTES });
  t.equal(result.code, 0);
  t.match(result.stdout, /^ok: 5 routes/);
});

t.test(
  "check lists every problem one a line with file:line:col, route and key, and exits 1",
  async (t) => {
    const file = join(FIXTURES, "many-problems.yaml");
    const result = await check(["--config", file]);
    t.equal(result.code, 1);
    t.equal(result.stdout, "");
    const lines = result.stderr.trimEnd().split("\n");
    t.equal(lines.length, 11, "ten problems and a summary");
    const at = (line: string) => new RegExp(`^${escapeRegExp(file)}:${line} `);
    t.match(lines[0], at("6:18"), "the first problem is in the file's first lines");
    t.match(lines[0], / nats\.auth\.token: an inline secret/, "outside a route: no route part");
    t.match(lines[1], at("15:14"));
    t.match(lines[1], / route users\.get routes\[0\]\.subject: \{region\} names no path param/);
    t.match(lines[9], at("37:5"));
    t.match(lines[9], / route routes\[3\] routes\[3\]\.name: is required$/, "nameless: routes[i]");
    t.equal(lines[10], `10 problem(s) in ${file}`);
  },
);

t.test(
  "check refuses what serve would refuse at start: a type named like the gateway's own schema",
  async (t) => {
    const file = tableWithOwnProtos(
      t,
      {
        "t.proto": `syntax = "proto3";
package turnout;
message GetProblem { string id = 1; }
message Problem { string id = 1; }
`,
      },
      `  - name: problems.get
    method: GET
    path: /v1/problems/:id
    subject: svc.problems.get
    request: turnout.GetProblem
    response: turnout.Problem
`,
    );
    const result = await check(["--config", file]);
    t.equal(result.code, 1);
    t.equal(result.stdout, "");
    t.match(result.stderr, `${file}: openapi: a protobuf type is named turnout.Problem`);
    t.match(
      result.stderr,
      /\n1 problem\(s\) in .*routes\.yaml\n$/,
      "with the count line, as for other problems",
    );
  },
);

t.test("check refuses an unknown flag with a hint and exits 2", async (t) => {
  const result = await check(["--confg", EXAMPLE_ROUTES]);
  t.equal(result.code, 2);
  t.match(result.stderr, /^--confg: unknown flag --confg; did you mean --config\?\n/);
  t.match(result.stderr, /usage: turnout check/);
});

t.test("check validates --nats-url as serve would use it", async (t) => {
  const result = await check(["--config", EXAMPLE_ROUTES, "--nats-url", "localhost:4222"]);
  t.equal(result.code, 2);
  t.match(result.stderr, /^--nats-url: "localhost:4222" needs a scheme: nats:\/\/localhost/);
});

t.test("check names a flag once in a usage error, and refuses a flag given twice", async (t) => {
  const missing = await check(["--config"]);
  t.equal(missing.code, 2);
  t.match(missing.stderr, /^--config: Option '--config <value>' argument missing\n/);
  const twice = await check(["--config", EXAMPLE_ROUTES, "--config", "other.yaml"]);
  t.equal(twice.code, 2, "not the last one taken");
  t.match(twice.stderr, /^--config: given more than once: give it once\n/);
  t.equal(twice.stdout, "");
});

t.test("turnout with no command prints the usage on stderr and exits 2", async (t) => {
  const run = spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts"], {
    encoding: "utf8",
    timeout: 30_000,
  });
  t.equal(run.status, 2);
  t.equal(run.stdout, "", "nothing on stdout, which a caller may read as output");
  t.match(run.stderr, /^usage: turnout <command>/);
  const help = spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", "--help"], {
    encoding: "utf8",
    timeout: 30_000,
  });
  t.equal(help.status, 0);
  t.match(help.stdout, /^usage: turnout <command>/, "asked for: on stdout");
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
