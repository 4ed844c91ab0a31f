/**
 * The TLS and auth files named in `nats:` are read and parsed at start, not
 * just checked for readability: a directory, a file that is not PEM, a key
 * that is not the certificate's, a garbage .creds file or nkey seed is a
 * configuration problem naming the key and the file, and `serve` exits 1
 * before it listens (else it would run, never ready, saying nothing).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nkeys } from "@nats-io/transport-node";
import t from "tap";
import { natsSettingProblems } from "../../../src/backends/nats/connection.js";
import type { NatsAuth, NatsConfig } from "../../../src/config/types.js";
import { startNatsServer } from "../../../src/devtools/nats-server.js";
import { makeCerts } from "../../helpers/certs.js";
import { operatorSetup } from "../../helpers/nats-jwt.js";
import { exitCode, spawnServe, USERS_GET_ROUTE } from "../../helpers/serve-process.js";
import { writeRoutes } from "../../helpers/stack.js";

const dir = mkdtempSync(join(tmpdir(), "turnout-nats-files-"));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const certs = makeCerts(dir);
const setup = operatorSetup(dir);
const LOCATION = "/etc/turnout/routes.yaml";

function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}
const garbage = file("garbage.pem", "not a pem\n");
const aDirectory = join(dir, "a-directory");
mkdirSync(aDirectory);
const goodCreds = setup.writeCreds(join(dir, "good.creds"));
const goodSeed = new TextDecoder().decode(nkeys.createUser().getSeed());

function problems(tls: NatsConfig["tls"], auth?: NatsAuth) {
  return natsSettingProblems({ servers: ["tls://127.0.0.1:4222"], name: "t", tls, auth }, LOCATION);
}

t.test("usable files and secrets are no problem", async (t) => {
  const tls = { ca: certs.ca.cert, cert: certs.client.cert, key: certs.client.key };
  t.same(problems(tls, { credsFile: goodCreds }), []);
  t.same(problems(undefined, { nkeySeed: { file: file("seed", `${goodSeed}\n`) } }), []);
});

t.test("a directory as ca is a problem naming the key and the path", async (t) => {
  t.match(problems({ ca: aDirectory }), [
    { location: LOCATION, key: "nats.tls.ca", message: `cannot read ${aDirectory} (EISDIR` },
  ]);
});

t.test("a ca file that holds no PEM certificate is a problem", async (t) => {
  t.match(problems({ ca: garbage }), [
    { key: "nats.tls.ca", message: `${garbage} holds no PEM certificate` },
  ]);
});

t.test("a cert or key that is not PEM is a problem naming it", async (t) => {
  t.match(problems({ cert: garbage, key: certs.client.key }), [
    { key: "nats.tls.cert", message: `${garbage} is not a usable PEM certificate` },
  ]);
  t.match(problems({ cert: certs.client.cert, key: garbage }), [
    { key: "nats.tls.key", message: `${garbage} is not a usable PEM private key` },
  ]);
});

t.test("swapped cert and key are two problems saying so", async (t) => {
  t.match(problems({ cert: certs.client.key, key: certs.client.cert }), [
    { key: "nats.tls.cert", message: /not a usable PEM certificate.*are cert and key swapped/ },
    { key: "nats.tls.key", message: /not a usable PEM private key.*are cert and key swapped/ },
  ]);
});

t.test("a key that is not the certificate's is a problem", async (t) => {
  t.match(problems({ cert: certs.client.cert, key: certs.server.key }), [
    {
      key: "nats.tls.key",
      message: `${certs.server.key} is not the private key of the certificate in ${certs.client.cert}`,
    },
  ]);
});

t.test("a garbage .creds file, or one with a bad seed, is a problem", async (t) => {
  t.match(problems(undefined, { credsFile: garbage }), [
    { key: "nats.auth.credsFile", message: `${garbage} is not a .creds file: no user JWT` },
  ]);
  const badSeed = file(
    "bad-seed.creds",
    readFileSync(goodCreds, "utf8").replace(/(BEGIN USER NKEY SEED-+\n)\S+/, "$1SUAXX"),
  );
  t.match(problems(undefined, { credsFile: badSeed }), [
    {
      key: "nats.auth.credsFile",
      message: `${badSeed} is not a .creds file: its nkey seed is not valid`,
    },
  ]);
  t.match(problems(undefined, { credsFile: aDirectory }), [
    { key: "nats.auth.credsFile", message: `cannot read ${aDirectory} (EISDIR` },
  ]);
});

t.test(
  "an invalid nkey seed, from a file or a variable, is a problem not echoing it",
  async (t) => {
    const seedFile = file("bad-seed", "SUnotaseed\n");
    t.match(problems(undefined, { nkeySeed: { file: seedFile } }), [
      { key: "nats.auth.nkeySeed", message: `secret file ${seedFile} does not hold an nkey seed` },
    ]);
    process.env.TURNOUT_TEST_BAD_SEED = "SUnotaseed";
    t.teardown(() => delete process.env.TURNOUT_TEST_BAD_SEED);
    const [problem] = problems(undefined, { nkeySeed: { env: "TURNOUT_TEST_BAD_SEED" } });
    t.match(problem, {
      key: "nats.auth.nkeySeed",
      message: "environment variable TURNOUT_TEST_BAD_SEED does not hold an nkey seed",
    });
    t.notMatch(problem?.message, "SUnotaseed", "the value is never echoed");
  },
);

t.test(
  "serve exits 1 before listening on a directory as ca and a garbage .creds file, naming both",
  async (t) => {
    const server = await startNatsServer();
    t.teardown(() => server.stop());
    const nats = `  tls: {ca: ${aDirectory}}\n  auth: {credsFile: ${garbage}}\n`;
    const config = writeRoutes(USERS_GET_ROUTE, nats);
    const args = ["--config", config, "--port", "0", "--admin-port", "0"];
    const { gateway, output } = spawnServe(t, args, "warn", { TURNOUT_NATS_URL: server.url });
    t.equal(await exitCode(gateway, 40_000), 1, `exit 1; output:\n${output.text}`);
    t.match(output.text, `${config}:5:13 nats.tls.ca: cannot read ${aDirectory} (EISDIR`);
    t.match(output.text, `${config}:6:21 nats.auth.credsFile: ${garbage} is not a .creds file`);
    t.match(output.text, "turnout serve: 2 problem(s); not starting");
    t.notMatch(output.text, /serving on/, "never listened");
  },
);
