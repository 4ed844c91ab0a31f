/**
 * `turnout cutover` checks what it is asked before it reaches NATS: against a
 * server without JetStream a refused value is exit 2 naming the flag, not
 * exit 1 about JetStream.
 */
import t from "tap";
import { runCutover } from "../../src/cli/cutover.js";
import { startNatsServer } from "../../src/devtools/nats-server.js";
import { captured } from "../helpers/cli-output.js";
import { cutoverRoutes } from "../helpers/cutover-fixture.js";

const server = await startNatsServer({ jetstream: false });
t.teardown(() => server.stop());
const routesFile = cutoverRoutes();

async function cli(...argv: string[]) {
  return captured((out) =>
    runCutover([...argv, "--config", routesFile], out, {
      TURNOUT_NATS_URL: server.url,
      USER: "bob",
    }),
  );
}

t.test(
  "cutover set and rollback refuse bad values with exit 2 naming the flag before touching NATS",
  async (t) => {
    const cases: Array<[string[], RegExp]> = [
      [["set", "users.get", "--nats", "200", "--reason", "x"], /--nats must be from 0 to 100/],
      [["set", "users.get", "--nats", "5", "--shadow", "1.234", "--reason", "x"], /--shadow/],
      [["set", "users.get", "--nats", "5"], /--reason is required/],
      [["set", "users.get", "--nats", "5", "--reason", "x", "--by", ""], /--by must be/],
      [["set", "users.create", "--nats", "0", "--shadow", "5", "--reason", "x"], /--shadow/],
      [["set", "orders.get", "--nats", "50", "--reason", "x"], /--nats is 50/],
      [["rollback", "users.get", "--reason", "a\u001bb"], /--reason must not hold control/],
      [["rollback", "users.get", "--by", "routes.yaml"], /--by "routes\.yaml" is reserved/],
    ];
    for (const [argv, message] of cases) {
      const result = await cli(...argv);
      t.equal(result.code, 2, argv.join(" "));
      t.match(result.stderr, message);
      t.notMatch(result.stderr, /JetStream/);
    }
    const valid = await cli("set", "users.get", "--nats", "20", "--reason", "x");
    t.equal(valid.code, 1, "a valid change still fails without JetStream");
    t.match(valid.stderr, /JetStream/);
  },
);
