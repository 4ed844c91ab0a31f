// How routes.yaml's text is read: its encoding, a BOM, keys YAML keeps apart, numbers as written.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import t, { type Test } from "tap";
import { loadConfig } from "../../src/config/load.js";
import type { ConfigProblem } from "../../src/errors.js";
import { problemsOf, route, table, writeTable } from "./fixtures/helpers.js";

function problemsFor(t: Test, yaml: string): ConfigProblem[] {
  return problemsOf(t, () => loadConfig(writeTable(t, yaml)));
}

/** Writes `bytes` as routes.yaml in the test's folder and returns its path. */
function writeBytes(t: Test, bytes: Buffer): string {
  const file = join(t.testdir(), "routes.yaml");
  writeFileSync(file, bytes);
  return file;
}

t.test(
  "a routes.yaml that is not UTF-8 is refused at its first bad byte (line, column, byte offset), and nothing else is read from it",
  async (t) => {
    // A Latin-1 é in the subject; before it a U+FFFD written as UTF-8, a character like any other.
    const [before = "", after = ""] = table(
      route({ subject: "svc.cafX.get", response: "users.v1.Nope" }),
    ).split("X");
    const head = `# \uFFFD\n${before}`;
    const bytes = Buffer.concat([Buffer.from(head), Buffer.from([0xe9]), Buffer.from(after)]);
    const file = writeBytes(t, bytes);
    const lines = head.split("\n");
    t.equal(lines.at(-1), "    subject: svc.caf");
    t.strictSame(
      problemsOf(t, () => loadConfig(file)),
      [
        {
          location: `${file}:${lines.length}:21`,
          key: "(file)",
          message: `is not valid UTF-8: byte 0xE9 at byte offset ${Buffer.byteLength(head)} does not belong to a UTF-8 character (is the file saved as Latin-1?); save it as UTF-8`,
        },
      ],
    );
  },
);

t.test("a leading BOM is no character: line 1's columns are counted without it", async (t) => {
  const yaml = table(route()).replace("version: 1", "version: 2");
  const file = writeBytes(t, Buffer.from(`\uFEFF${yaml}`, "utf8"));
  t.match(
    problemsOf(t, () => loadConfig(file)),
    [{ key: "version", location: /routes\.yaml:1:10$/, message: /must be 1/ }],
  );
});

t.test(
  'keys with the same text given twice in one map (1 and "1") are refused, not one silently dropped',
  async (t) => {
    const legacy = table(route({ legacy: '"1"' })).replace(
      "  users: http://users-legacy:8080\n",
      '  1: http://a:1\n  "1": http://b:2\n',
    );
    t.strictSame(
      problemsFor(t, legacy).map(({ location, key, message }) => ({ location, key, message })),
      [
        {
          location: `${join(t.testdirName, "routes.yaml")}:7:3`,
          key: "legacy.1",
          message:
            'key "1" is given twice (also at line 6): YAML tells 1 from "1", but both name the same entry and only the first would be read',
        },
      ],
    );
    const inRoute = problemsFor(t, table(route({ json: '{ true: 1, "true": 2 }' })));
    t.match(
      inRoute.filter((p) => /given twice/.test(p.message)),
      [{ route: "users.get", key: "routes[0].json.true", message: /also at line 15/ }],
    );
  },
);

t.test("numbers are checked as written, not as the double YAML rounds them to", async (t) => {
  const yaml = table(
    route({
      cutover: "{ nats: 33.330000000000001, shadow: 0.0100000000000000001 }",
      retry: "{ attempts: 2.0000000000000001 }",
      bodyLimit: "1048576.00000000001",
      timeout: '"1.0000000000000001s"',
      breaker: "{ volume: 1e-400 }",
    }),
  );
  t.match(problemsFor(t, yaml), [
    {
      key: "routes[0].cutover.nats",
      message: "must have at most two decimals, got 33.330000000000001",
    },
    {
      key: "routes[0].cutover.shadow",
      message: "must have at most two decimals, got 0.0100000000000000001",
    },
    { key: "routes[0].retry.attempts", message: "must be a whole number, got 2.0000000000000001" },
    {
      key: "routes[0].bodyLimit",
      message: "must be a whole number of bytes, got 1048576.00000000001",
    },
    { key: "routes[0].timeout", message: /^must be a whole number of milliseconds/ },
    { key: "routes[0].breaker.volume", message: "must be a whole number, got 1e-400" },
  ]);
  const fine = loadConfig(
    writeTable(
      t,
      table(
        route({
          cutover: "{ nats: 33.330, shadow: 1200e-2 }",
          retry: "{ attempts: 2.0 }",
          bodyLimit: "0x400",
        }),
      ),
    ),
  ).routes[0]!;
  t.strictSame(
    [fine.cutover.nats, fine.cutover.shadow, fine.retry.attempts, fine.bodyLimitBytes],
    [33.33, 12, 2, 1024],
    "trailing zeros, exponents and hex that stay within the rule load",
  );
});
