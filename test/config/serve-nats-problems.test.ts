// Tests for src/cli/serve.ts's use of loadConfig's checkNats (kept with the config tests it shares helpers with).
import t from "tap";
import { runServe } from "../../src/cli/serve.js";
import type { StopRequest } from "../../src/cli/stop-signals.js";
import { captured } from "../helpers/cli-output.js";
import { route, table, writeTable } from "./fixtures/helpers.js";

/** No signal ever comes: the run ends on its own, refusing the table. */
const NO_STOP: StopRequest = {
  signal: new Promise(() => {}),
  aborted: new AbortController().signal,
  received: () => undefined,
};

t.test(
  "serve reports an unset secret variable at its key's line:col together with the file's other problems",
  async (t) => {
    const unset = "TURNOUT_TEST_NEVER_SET_SECRET";
    const yaml = table(route({ colour: "red" })).replace(
      "  servers: [nats://127.0.0.1:4222]\n",
      `  servers: [nats://127.0.0.1:4222]\n  auth: { token: { env: ${unset} } }\n`,
    );
    const file = writeTable(t, yaml);
    const args = ["--config", file, "--port", "0", "--admin-port", "0"];
    const run = await captured((out) => runServe(args, {}, out, NO_STOP));
    t.equal(run.code, 1);
    const lines = run.stderr.trimEnd().split("\n");
    t.strictSame(lines.length, 3, run.stderr);
    t.equal(
      lines[0],
      `${file}:5:18 nats.auth.token: environment variable ${unset} is not set or empty`,
    );
    t.match(lines[1], `${file}:16:5 route users.get routes[0].colour: unknown key "colour"`);
    t.equal(lines[2], "turnout serve: 2 problem(s); not starting");
    t.equal(run.stdout, "", "nothing started");
  },
);
