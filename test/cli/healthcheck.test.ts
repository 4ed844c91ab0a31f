/**
 * `turnout healthcheck` asks the gateway where `serve` with the same flags and
 * TURNOUT_* variables listens: admin port, host, HTTPS. The image's
 * HEALTHCHECK runs it, so any port or scheme set through the environment is
 * probed where it is.
 */
import { readFileSync } from "node:fs";
import t from "tap";
import { runHealthcheck } from "../../src/cli/healthcheck.js";
import { makeCerts } from "../helpers/certs.js";
import { captured } from "../helpers/cli-output.js";
import { usersGetRoute } from "../helpers/route-yaml.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

const config = writeRoutes(usersGetRoute());
const certs = makeCerts(t.testdir());

const healthcheck = (argv: string[], env: NodeJS.ProcessEnv) =>
  captured((out) => runHealthcheck(argv, { TURNOUT_CONFIG: config, ...env }, out));

t.test("an HTTPS gateway on another admin port, both set in the env, is healthy", async (t) => {
  const stack = await startStack(t, config, {
    listener: {
      https: { cert: readFileSync(certs.server.cert), key: readFileSync(certs.server.key) },
    },
  });
  const adminPort = new URL(stack.gateway.adminUrl).port;
  const env = {
    TURNOUT_ADMIN_PORT: adminPort,
    TURNOUT_HOST: "127.0.0.1",
    TURNOUT_TLS_CERT: certs.server.cert,
    TURNOUT_TLS_KEY: certs.server.key,
  };
  const ok = await healthcheck([], env);
  t.equal(ok.code, 0, ok.stderr);

  const plain = await healthcheck([], { ...env, TURNOUT_TLS_CERT: "", TURNOUT_TLS_KEY: "" });
  t.equal(plain.code, 1, "asked over plain HTTP, the HTTPS listener does not answer 200");
  t.match(plain.stderr, `turnout healthcheck: http://127.0.0.1:${adminPort}/healthz`);
});

t.test(
  "a flag names the admin port; a gateway listening on every interface is asked on loopback",
  async (t) => {
    const stack = await startStack(t, config);
    const adminPort = new URL(stack.gateway.adminUrl).port;
    const ok = await healthcheck(["--admin-port", adminPort, "--host", "0.0.0.0"], {});
    t.equal(ok.code, 0, ok.stderr);
    await stack.gateway.close();
    const gone = await healthcheck(["--admin-port", adminPort], {});
    t.equal(gone.code, 1, "nothing listening: unhealthy");
    t.match(gone.stderr, `http://127.0.0.1:${adminPort}/healthz: `);
  },
);

t.test("a bad setting is a usage error (exit 2) naming it", async (t) => {
  const bad = await healthcheck([], { TURNOUT_ADMIN_PORT: "ninety" });
  t.equal(bad.code, 2);
  t.match(bad.stderr, /TURNOUT_ADMIN_PORT/);
});
