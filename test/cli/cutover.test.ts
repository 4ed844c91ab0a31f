import t from "tap";
import { runCutover } from "../../src/cli/cutover.js";
import { captured } from "../helpers/cli-output.js";
import { cutoverRoutes, TOKEN, within } from "../helpers/cutover-fixture.js";
import { startStack } from "../helpers/stack.js";

const routesFile = cutoverRoutes();
const stack = await startStack(t, routesFile, { jetstream: true, adminToken: TOKEN });
const gw = stack.gateway;
await within(5000, () => gw.cutoverStore.mode === "live");

/** Runs `turnout cutover ...` in-process with captured output. */
async function cli(...argv: string[]) {
  return captured((out) =>
    runCutover(argv, out, { TURNOUT_NATS_URL: stack.server.url, USER: "bob" }),
  );
}

t.test(
  "cutover set, history and rollback round trip, and the gateway follows each step",
  async (t) => {
    const set = await cli(
      "set",
      "users.get",
      "--nats",
      "25.5",
      "--shadow",
      "10",
      "--reason",
      "canary",
      "--config",
      routesFile,
    );
    t.equal(set.code, 0, set.stderr);
    t.match(set.stdout, /^users\.get: nats 25\.5% shadow 10% \(revision \d+\)/);
    t.ok(
      await within(1000, () => gw.cutover.of("users.get").nats === 25.5),
      "gateway applies the set within 1 s",
    );

    const history = await cli("history", "users.get", "--config", routesFile);
    t.equal(history.code, 0);
    const lines = history.stdout.trimEnd().split("\n");
    t.equal(lines.length, 3, "header, the routes.yaml seed, the set");
    t.match(lines[1], /routes\.yaml\s+10\s+0\s+starting values from routes\.yaml/);
    t.match(lines[2], /bob@\S+\s+25\.5\s+10\s+canary$/);

    const rollback = await cli("rollback", "users.get", "--config", routesFile, "--by", "carol");
    t.equal(rollback.code, 0, rollback.stderr);
    t.match(rollback.stdout, /rolled back from nats 25\.5% shadow 10% to nats 10% shadow 0%/);
    t.ok(
      await within(1000, () => gw.cutover.of("users.get").nats === 10),
      "gateway applies the rollback",
    );

    const after = await cli("history", "users.get", "--config", routesFile);
    const last = after.stdout.trimEnd().split("\n").at(-1) ?? "";
    const setAt = lines[2]?.split(/\s+/)[1];
    t.match(
      last,
      new RegExp(`carol\\s+10\\s+0\\s+rollback of ${setAt}$`),
      "the rollback is in the history",
    );

    const list = await cli("list", "--config", routesFile);
    t.equal(list.code, 0);
    t.match(list.stdout, /users\.get\s+10\s+0\s+live\s+-\s+\S+\s+carol\s+rollback of/);
  },
);

t.test("cutover set refuses bad values with exit 2 and changes nothing", async (t) => {
  const before = gw.cutover.of("users.get").nats;
  const cases: Array<[string[], RegExp]> = [
    [["--nats", "101", "--reason", "x"], /--nats must be from 0 to 100/],
    [["--nats", "1.234", "--reason", "x"], /--nats has at most two decimals/],
    [["--nats", "abc", "--reason", "x"], /--nats must be a number/],
    [["--nats", "5"], /--reason is required/],
  ];
  for (const [flags, message] of cases) {
    const result = await cli("set", "users.get", ...flags, "--config", routesFile);
    t.equal(result.code, 2, flags.join(" "));
    t.match(result.stderr, message);
  }
  const unknown = await cli("set", "nope", "--nats", "5", "--reason", "x", "--config", routesFile);
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /no route named "nope"/);
  const noNats = await cli("set", "users.get", "--reason", "x", "--config", routesFile);
  t.equal(noNats.code, 2);
  t.match(noNats.stderr, /set needs --nats P/);
  t.equal(gw.cutover.of("users.get").nats, before);
});

t.test(
  "cutover rollback --reason keeps the reason in the history after the rolled-back time",
  async (t) => {
    const set = await cli(
      "set",
      "users.get",
      "--nats",
      "40",
      "--reason",
      "wider",
      "--config",
      routesFile,
    );
    t.equal(set.code, 0, set.stderr);
    const rollback = await cli(
      "rollback",
      "users.get",
      "--reason",
      "5xx spike on NATS",
      "--config",
      routesFile,
    );
    t.equal(rollback.code, 0, rollback.stderr);
    const last = (await cli("history", "users.get", "--config", routesFile)).stdout
      .trimEnd()
      .split("\n")
      .at(-1);
    t.match(last, /bob@\S+\s+\d+(\.\d+)?\s+\d+\s+rollback of \S+: 5xx spike on NATS$/);
  },
);

t.test(
  "a change flag that does not apply to the subcommand is refused with exit 2, not dropped",
  async (t) => {
    const before = { ...gw.cutover.of("users.get") };
    const cases: Array<[string[], RegExp]> = [
      [["rollback", "users.get", "--nats", "0"], /--nats does not apply to rollback/],
      [["rollback", "users.get", "--shadow", "0"], /--shadow does not apply to rollback/],
      [["history", "users.get", "--reason", "x"], /--reason does not apply to history/],
      [["list", "--by", "carol"], /--by does not apply to list/],
    ];
    for (const [argv, message] of cases) {
      const result = await cli(...argv, "--config", routesFile);
      t.equal(result.code, 2, argv.join(" "));
      t.match(result.stderr, message);
    }
    t.same({ ...gw.cutover.of("users.get") }, before, "nothing was rolled back");
  },
);

t.test("cutover rollback with no earlier value fails with exit 1", async (t) => {
  const result = await cli("rollback", "orders.get", "--config", routesFile);
  t.equal(result.code, 1);
  t.match(result.stderr, /no earlier cutover value to roll back to/);
});

t.test("cutover without a NATS server to reach fails with exit 1 naming the server", async (t) => {
  let stderr = "";
  const out = { stdout: { write: () => true }, stderr: { write: (s: string) => (stderr += s) } };
  const code = await runCutover(
    ["list", "--config", routesFile, "--nats-url", "nats://127.0.0.1:1"],
    out,
    {},
  );
  t.equal(code, 1);
  t.match(stderr, /cannot connect to NATS nats:\/\/127\.0\.0\.1:1/);
});

/** The bucket the gateway watches, for raw KV writes no command makes. */
function kv() {
  const bucket = gw.cutoverStore.bucket;
  if (bucket === undefined) throw new Error("the gateway is not live");
  return bucket.kv;
}

/** The key's latest KV revision: unchanged means nothing was written. */
async function revisionOf(route: string): Promise<number | undefined> {
  return (await kv().get(route))?.revision;
}

t.test("cutover set refuses a blank --by with exit 2 instead of recording user@host", async (t) => {
  const before = await revisionOf("users.get");
  for (const by of ["", "   "]) {
    const result = await cli(
      ...["set", "users.get", "--nats", "12", "--reason", "x", "--by", by],
      ...["--config", routesFile],
    );
    t.equal(result.code, 2, `--by ${JSON.stringify(by)}`);
    t.match(result.stderr, /--by must be a non-empty string/);
  }
  const rollback = await cli("rollback", "users.get", "--by", "", "--config", routesFile);
  t.equal(rollback.code, 2);
  t.match(rollback.stderr, /--by must be a non-empty string/);
  t.equal(await revisionOf("users.get"), before, "nothing was written");
});

t.test("a flag given twice is refused with exit 2 naming it, not the last one taken", async (t) => {
  const before = await revisionOf("users.get");
  const cases: Array<[string[], RegExp]> = [
    [
      ["set", "users.get", "--nats", "12", "--nats", "13", "--reason", "x"],
      /--nats: given more than once/,
    ],
    [
      ["set", "users.get", "--nats=12", "--reason", "a", "--reason=b"],
      /--reason: given more than once/,
    ],
    [["rollback", "users.get", "--by", "a", "--by", "b"], /--by: given more than once/],
  ];
  for (const [argv, message] of cases) {
    const result = await cli(...argv, "--config", routesFile);
    t.equal(result.code, 2, argv.join(" "));
    t.match(result.stderr, message);
  }
  t.equal(await revisionOf("users.get"), before, "nothing was written");
});

t.test(
  "cutover set and rollback refuse control characters in --reason and --by, and --by routes.yaml, with exit 2 naming the flag",
  async (t) => {
    const before = await revisionOf("users.get");
    const forged = "one\n7  2099-01-01T00:00:00.000Z  ceo  0  0  forged row";
    const cases: Array<[string[], RegExp]> = [
      [["--reason", forged], /--reason must not hold control characters.*U\+000A/],
      [["--reason", "red \u001b[31m alert"], /--reason must not hold control characters.*U\+001B/],
      [["--reason", "tab\there"], /--reason must not hold control characters.*U\+0009/],
      [["--reason", "x", "--by", "eve\u0007"], /--by must not hold control characters.*U\+0007/],
      [["--reason", "x", "--by", "eve\u009b31m"], /--by must not hold control characters.*U\+009B/],
      [["--reason", "x", "--by", "eve\u007f"], /--by must not hold control characters.*U\+007F/],
      [["--reason", "x", "--by", "routes.yaml"], /--by "routes\.yaml" is reserved/],
      [["--reason", "x", "--by", " Routes.YAML "], /--by "Routes\.YAML" is reserved/],
    ];
    for (const [flags, message] of cases) {
      const set = await cli("set", "users.get", "--nats", "12", ...flags, "--config", routesFile);
      t.equal(set.code, 2, `set ${JSON.stringify(flags)}`);
      t.match(set.stderr, message);
      const rollback = await cli("rollback", "users.get", ...flags, "--config", routesFile);
      t.equal(rollback.code, 2, `rollback ${JSON.stringify(flags)}`);
      t.match(rollback.stderr, message);
    }
    t.equal(await revisionOf("users.get"), before, "nothing was written");
  },
);

t.test(
  "cutover history and list print control characters of records already stored escaped, never raw",
  async (t) => {
    const at = new Date().toISOString();
    const record = {
      nats: 3,
      shadow: 0,
      by: "mallory\u009b2J",
      reason: "ok\n4  2099-01-01T00:00:00.000Z  ceo  0  0  forged\u001b[31m red\u0000",
      at,
    };
    await kv().put("users.get", JSON.stringify(record));
    t.ok(await within(1000, () => gw.cutover.of("users.get").nats === 3), "the gateway applies it");
    const history = await cli("history", "users.get", "--config", routesFile);
    t.equal(history.code, 0, history.stderr);
    t.notMatch(history.stdout, /\p{Cc}(?<!\n)/u, "no control character but the line ends");
    const last = history.stdout.trimEnd().split("\n").at(-1);
    t.match(last, "mallory\\u009b2J");
    t.match(last, "ok\\u000a4  2099-01-01T00:00:00.000Z  ceo  0  0  forged\\u001b[31m red\\u0000");
    const list = await cli("list", "--config", routesFile);
    t.equal(list.code, 0, list.stderr);
    t.notMatch(list.stdout, /\p{Cc}(?<!\n)/u, "list escapes them too");
    t.match(list.stdout, /users\.get\s+3\s+0\s+live\s+-\s+\S+\s+mallory\\u009b2J\s+ok\\u000a4/);
  },
);

t.test(
  "cutover history shows a delete, a purge and a malformed value as rows saying what they did, and rollback treats the delete as a change to routes.yaml's values",
  async (t) => {
    const set = (nats: string) =>
      cli("set", "users.create", "--nats", nats, "--reason", `to ${nats}`, "--config", routesFile);
    t.equal((await set("5")).code, 0);
    await kv().delete("users.create");
    await kv().put("users.create", "not json");
    await kv().put("users.create", JSON.stringify({ nats: 150, shadow: 0, by: "x", reason: "y" }));
    t.equal((await set("7")).code, 0);
    t.ok(await within(1000, () => gw.cutover.of("users.create").nats === 7), "the gateway has 7");

    const history = await cli("history", "users.create", "--config", routesFile);
    t.equal(history.code, 0, history.stderr);
    const rows = history.stdout.trimEnd().split("\n").slice(1);
    const time = "\\d{4}-\\d\\d-\\d\\dT\\S+Z";
    t.match(rows.at(-5), new RegExp(`^\\d+\\s+${time}\\s+bob@\\S+\\s+5\\s+0\\s+to 5$`));
    t.match(
      rows.at(-4),
      new RegExp(`^\\d+\\s+${time}\\s+-\\s+-\\s+-\\s+deleted: routes\\.yaml's values apply$`),
    );
    t.match(
      rows.at(-3),
      new RegExp(
        `^\\d+\\s+${time}\\s+-\\s+-\\s+-\\s+ignored by the replicas \\(malformed: not JSON\\)$`,
      ),
    );
    t.match(
      rows.at(-2),
      /^\d+\s+\S+\s+-\s+-\s+-\s+ignored by the replicas \(malformed: nats must be from 0 to 100, got 150\)$/,
    );
    t.match(rows.at(-1), /^\d+\s+\S+\s+bob@\S+\s+7\s+0\s+to 7$/);
    const revisions = rows.map((row) => Number(row.split(/\s+/)[0]));
    t.same(
      revisions,
      [...revisions].sort((a, b) => a - b),
      "oldest first, each with its revision",
    );

    // The value before 7 is the delete's: routes.yaml's 0, not the deleted 5.
    const rollback = await cli("rollback", "users.create", "--config", routesFile);
    t.equal(rollback.code, 0, rollback.stderr);
    t.match(rollback.stdout, /rolled back from nats 7% shadow 0% to nats 0% shadow 0%/);

    await kv().purge("users.create");
    t.ok(await within(1000, () => gw.cutover.of("users.create").source === "file"), "file values");
    const purged = await cli("history", "users.create", "--config", routesFile);
    t.match(
      purged.stdout,
      new RegExp(
        `^REVISION.*\\n\\d+\\s+${time}\\s+-\\s+-\\s+-\\s+purged: routes\\.yaml's values apply\\n$`,
      ),
    );
  },
);
