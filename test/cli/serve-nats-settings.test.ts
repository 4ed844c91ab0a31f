/**
 * `turnout serve` (a real child process) with NATS secrets and files it cannot
 * use: refused at start, before listening, rather than a gateway that stays
 * "not connected yet" without saying why.
 */
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import t from "tap";
import { startNatsServer } from "../../src/devtools/nats-server.js";
import {
  exitCode,
  servingUrls,
  spawnServe,
  USERS_GET_ROUTE,
  waitUntil,
} from "../helpers/serve-process.js";
import { writeRoutes } from "../helpers/stack.js";

/** Started from the sources through tsx: a cold start on a loaded machine can take a while. */
const START_MS = 40_000;
const UNSET_VAR = "TURNOUT_TEST_NEVER_SET_TOKEN";

/** `serve` on a table whose nats section adds `nats` (indented under `nats:`). */
function serveWith(natsUrl: string, nats: string, extraArgs: string[] = []) {
  const config = writeRoutes(USERS_GET_ROUTE, nats);
  const args = ["--config", config, "--port", "0", "--admin-port", "0", ...extraArgs];
  const env = { [UNSET_VAR]: undefined, TURNOUT_NATS_URL: natsUrl };
  return { config, args, env };
}

t.test(
  "an unset secret variable or an unreadable TLS file stops serve with exit 1 before it listens, naming each key and variable or file",
  async (t) => {
    const server = await startNatsServer();
    t.teardown(() => server.stop());
    const nats = `  tls: {ca: ./missing-ca.pem}\n  auth: {token: {env: ${UNSET_VAR}}}\n`;
    const { config, args, env } = serveWith(server.url, nats);
    const { gateway, output } = spawnServe(t, args, "warn", env);
    t.equal(await exitCode(gateway, START_MS), 1, `exit 1; output:\n${output.text}`);
    const ca = join(dirname(config), "missing-ca.pem");
    t.match(output.text, `${config}:5:13 nats.tls.ca: cannot read ${ca} (ENOENT)`);
    t.match(
      output.text,
      `${config}:6:17 nats.auth.token: environment variable ${UNSET_VAR} is not set or empty`,
    );
    t.match(output.text, "turnout serve: 2 problem(s); not starting");
    t.notMatch(output.text, /serving on/, "never listened");
  },
);

t.test(
  "with --workers the primary refuses an unreadable secret file once, before starting any worker",
  async (t) => {
    const server = await startNatsServer();
    t.teardown(() => server.stop());
    const nats = "  auth: {user: svc, pass: {file: ./no-such-pass}}\n";
    const { args, env } = serveWith(server.url, nats, ["--workers", "2"]);
    const { gateway, output } = spawnServe(t, args, "warn", env);
    t.equal(await exitCode(gateway, START_MS), 1, `exit 1; output:\n${output.text}`);
    t.equal(
      output.text.match(/nats\.auth\.pass: cannot read secret file .*no-such-pass/g)?.length,
      1,
    );
    t.notMatch(output.text, /starting 2 workers/);
  },
);

t.test(
  "a gateway whose credentials are refused logs it at error, keeps trying, and connects once its secret file is right",
  async (t) => {
    const server = await startNatsServer({ args: ["--auth", "the-right-token"] });
    t.teardown(() => server.stop());
    const { config, args, env } = serveWith(server.url, "  auth: {token: {file: ./token}}\n");
    const tokenFile = join(dirname(config), "token");
    writeFileSync(tokenFile, "wrong\n");
    const { output } = spawnServe(t, args, "warn", env);
    await waitUntil(() => /credentials/.test(output.text), START_MS).catch(() => {
      t.fail(`nothing logged about the refused connection; output:\n${output.text}`);
    });
    t.match(
      output.text,
      /"level":50,.*"msg":"NATS: connect attempt failed: .*Authorization.*the server refuses the credentials; retrying/i,
    );
    const { adminUrl } = await servingUrls(output, START_MS);
    const readyz = () =>
      fetch(`${adminUrl}/readyz`).then(
        (res) => res.status,
        () => 0,
      );
    t.equal(await readyz(), 503, "not ready while refused");
    // Issued late (a secret agent, a rotation): read again at the next attempt.
    writeFileSync(tokenFile, "the-right-token\n");
    await waitUntil(async () => (await readyz()) === 200, 20_000);
    t.notMatch(output.text, /gave up connecting/, "it never gave up");
  },
);
