/**
 * The NATS-talking commands check the secrets and files `nats:` names as
 * `serve` does: one they cannot use is reported at its key in the file, exit 1,
 * before any connection is tried.
 */
import t from "tap";
import { runCutover } from "../../src/cli/cutover.js";
import { runDlq } from "../../src/cli/dlq.js";
import { captured } from "../helpers/cli-output.js";
import { USERS_GET_ROUTE } from "../helpers/serve-process.js";
import { writeRoutes } from "../helpers/stack.js";

const UNSET_VAR = "TURNOUT_TEST_NEVER_SET_PASS";

t.test(
  "cutover and dlq name an unset secret variable at its key, file:line:col, as serve does, and exit 1",
  async (t) => {
    // No server is started: a command that tried to connect would say so instead.
    const config = writeRoutes(USERS_GET_ROUTE, `  auth: {user: svc, pass: {env: ${UNSET_VAR}}}\n`);
    const env = { [UNSET_VAR]: undefined };
    const runs = {
      cutover: await captured((out) => runCutover(["list", "--config", config], out, env)),
      dlq: await captured((out) => runDlq(["list", "--config", config], out, env)),
    };
    for (const [command, run] of Object.entries(runs)) {
      t.equal(run.code, 1, command);
      // The line `serve` and `check` print, then a count.
      t.equal(
        run.stderr,
        `${config}:5:27 nats.auth.pass: environment variable ${UNSET_VAR} is not set or empty\n` +
          `turnout ${command}: 1 problem(s) in the configuration\n`,
        command,
      );
      t.notMatch(run.stderr, /cannot connect/, `${command} tried no connection`);
    }
  },
);
