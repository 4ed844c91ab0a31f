/** `turnout serve`'s refusals before anything starts: exit codes and what they name. */
import { once } from "node:events";
import { type AddressInfo, createServer } from "node:net";
import t from "tap";
import { runServe } from "../../src/cli/serve.js";
import { captured } from "../helpers/cli-output.js";
import { usersGetRoute } from "../helpers/route-yaml.js";
import { spawnServe } from "../helpers/serve-process.js";
import { writeRoutes } from "../helpers/stack.js";

async function serve(...argv: string[]) {
  return servedWith({}, ...argv);
}

async function servedWith(env: NodeJS.ProcessEnv, ...argv: string[]) {
  return captured((out) => runServe(argv, env, out));
}

t.test("a bad command line exits 2 with the usage, as every other command does", async (t) => {
  const unknown = await serve("--prot", "1");
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /--prot: unknown flag --prot; did you mean --port\?/);
  t.match(unknown.stderr, /usage: turnout serve/);
  t.equal((await serve("--port", "abc")).code, 2);
  const help = await serve("--help");
  t.equal(help.code, 0);
  t.match(help.stdout, /usage: turnout serve/);
});

t.test(
  "an empty --host exits 2 with the usage instead of listening on every interface",
  async (t) => {
    // A missing table: should the host pass, serve exits 1 rather than start listening.
    const run = await serve("--host", "", "--config", "/nonexistent/routes.yaml");
    t.equal(run.code, 2);
    t.match(run.stderr, /^--host: is empty: give a host name or address/);
    t.match(run.stderr, /usage: turnout serve/);
  },
);

t.test(
  "an admin token no Bearer header can carry (a secret file's newline) exits 2 naming TURNOUT_ADMIN_TOKEN",
  async (t) => {
    const config = writeRoutes(usersGetRoute());
    for (const token of ["xq7tok\n", "xq7 tok", "xq7tök"]) {
      const run = await servedWith({ TURNOUT_ADMIN_TOKEN: token }, "--config", config);
      t.equal(run.code, 2, JSON.stringify(token));
      t.match(run.stderr, /^TURNOUT_ADMIN_TOKEN: .*no Authorization: Bearer header can carry/m);
      t.notMatch(run.stderr, /xq7/, "the token itself is not echoed");
    }
  },
);

t.test("a certificate or key that is not PEM exits 1 naming the file and the flag", async (t) => {
  const dir = t.testdir({ "cert.pem": "not a certificate", "key.pem": "not a key" });
  const config = writeRoutes(usersGetRoute());
  const args = ["--config", config, "--port", "0", "--admin-port", "0"];
  const bad = await serve(...args, "--tls-cert", `${dir}/cert.pem`, "--tls-key", `${dir}/key.pem`);
  t.equal(bad.code, 1);
  t.match(bad.stderr, new RegExp(`${dir}/cert\\.pem.*tls-cert.*not a usable PEM file`));
});

t.test(
  "under --workers, a certificate that is not PEM is reported once, by turnout, before any worker starts",
  async (t) => {
    const dir = t.testdir({ "cert.pem": "not a certificate", "key.pem": "not a key" });
    const config = writeRoutes(usersGetRoute());
    const tls = ["--tls-cert", `${dir}/cert.pem`, "--tls-key", `${dir}/key.pem`];
    const { gateway, output } = spawnServe(t, [
      ...["--config", config, "--port", "0", "--admin-port", "0", "--workers", "3"],
      ...tls,
    ]);
    const [code] = (await once(gateway, "exit")) as [number];
    t.equal(code, 1);
    t.equal(output.text.match(/not a usable PEM file/g)?.length, 1, output.text);
    t.notMatch(output.text, /starting 3 workers/);
  },
);

t.test(
  "under --workers, a port in use is reported once, by turnout, before any worker starts",
  async (t) => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    t.teardown(() => new Promise((resolve) => taken.close(resolve)));
    const port = (taken.address() as AddressInfo).port;
    const config = writeRoutes(usersGetRoute());
    const { gateway, output } = spawnServe(t, [
      ...["--config", config, "--port", String(port), "--admin-port", "0", "--workers", "3"],
    ]);
    const [code] = (await once(gateway, "exit")) as [number];
    t.equal(code, 1);
    t.equal(output.text.match(/EADDRINUSE/g)?.length, 1, output.text);
    t.match(output.text, /^turnout serve: cannot listen: .*EADDRINUSE.*; not starting$/m);
    t.notMatch(output.text, /starting 3 workers|drained/);
  },
);
