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
