/**
 * `nats.auth.credsFile`: decentralized JWT auth against a real nats-server in
 * operator mode (operator JWT trusted, the account preloaded in a MEMORY resolver).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, errors, nkeys } from "@nats-io/transport-node";
import t from "tap";
import { connectNats, natsConnectOptions } from "../../../src/backends/nats/connection.js";
import { NatsStatus } from "../../../src/backends/nats/status.js";
import { loadConfigAndProtos } from "../../../src/config/load.js";
import type { NatsConfig } from "../../../src/config/types.js";
import { startNatsServer } from "../../../src/devtools/nats-server.js";
import { TurnoutError } from "../../../src/errors.js";
import { operatorSetup } from "../../helpers/nats-jwt.js";
import {
  DEFAULTS,
  ROUTES,
  type SeenRequest,
  startUsersWorker,
} from "../../helpers/routes-and-workers.js";
import { PROTO_DIR, startLoopbackGateway } from "../../helpers/stack.js";

const dir = mkdtempSync(join(tmpdir(), "turnout-nats-creds-"));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const setup = operatorSetup(dir);

function config(url: string, credsFile: string): NatsConfig {
  return { servers: [url], name: "turnout-creds-test", tls: undefined, auth: { credsFile } };
}

t.test(
  "a user of the preloaded account connects with its creds file; request/reply works",
  async (t) => {
    const server = await startNatsServer({ args: ["-c", setup.conf] });
    t.teardown(() => server.stop());
    const gatewayCreds = setup.writeCreds(join(dir, "gateway.creds"));
    const workerCreds = setup.writeCreds(join(dir, "worker.creds"));

    const gateway = await connectNats(config(server.url, gatewayCreds), {
      signal: AbortSignal.timeout(5000),
    });
    t.teardown(() => gateway.close());
    const worker = await connectNats(config(server.url, workerCreds), {
      signal: AbortSignal.timeout(5000),
    });
    t.teardown(() => worker.close());
    t.ok(gateway.info?.auth_required, "the server required auth");
    await t.rejects(
      connect({ servers: server.url, reconnect: false, timeout: 2000 }),
      errors.AuthorizationError,
      "while a client without creds is refused (the server really is in operator mode)",
    );

    worker.subscribe("creds.echo", {
      callback: (_err, msg) => {
        msg.respond(`echo:${msg.string()}`);
      },
    });
    await worker.flush();
    const reply = await gateway.request("creds.echo", "hello", { timeout: 2000 });
    t.equal(reply.string(), "echo:hello", "request/reply between two users of the account");
  },
);

t.test(
  "a user signed by an account the server does not know is refused, and retried until stopped",
  async (t) => {
    const server = await startNatsServer({ args: ["-c", setup.conf] });
    t.teardown(() => server.stop());
    const stranger = setup.writeCreds(join(dir, "stranger.creds"), nkeys.createAccount());
    const status = new NatsStatus();
    const err = await connectNats(config(server.url, stranger), {
      status,
      signal: AbortSignal.timeout(1500),
      reconnectTimeWaitMs: 100,
    }).then(
      async (nc) => {
        await nc.close();
        return undefined;
      },
      (e: unknown) => e,
    );
    t.match(status.lastError, /Authorization Violation/i, "the server's authorization violation");
    t.equal((err as Error | undefined)?.name, "TimeoutError", "still trying when stopped");
  },
);

t.test("a missing creds file is a config error naming nats.auth.credsFile", async (t) => {
  const missing = join(dir, "nope.creds");
  const err = (() => {
    try {
      natsConnectOptions(config("nats://127.0.0.1:4222", missing));
      return undefined;
    } catch (e) {
      return e;
    }
  })();
  t.ok(err instanceof TurnoutError, "a TurnoutError");
  t.match(err, {
    code: "TURNOUT_ERR_CONFIG",
    message: /^nats\.auth\.credsFile: cannot read .*nope\.creds \(ENOENT\)/,
  });
  await t.rejects(
    connectNats(config("nats://127.0.0.1:4222", missing)),
    { code: "TURNOUT_ERR_CONFIG" },
    "connectNats fails the same way before any connect attempt",
  );
});

t.test(
  "the gateway with nats.auth.credsFile in routes.yaml serves a request through a worker",
  async (t) => {
    const server = await startNatsServer({ args: ["-c", setup.conf] });
    t.teardown(() => server.stop());
    const gatewayDir = mkdtempSync(join(dir, "gateway-"));
    setup.writeCreds(join(gatewayDir, "gateway.creds"));
    const routesFile = join(gatewayDir, "routes.yaml");
    writeFileSync(
      routesFile,
      `version: 1\nprotos: [${JSON.stringify(PROTO_DIR)}]\n` +
        `nats:\n  servers: [${server.url}]\n  auth: { credsFile: ./gateway.creds }\n` +
        `${DEFAULTS}routes:\n${ROUTES}`,
    );
    const { config: gatewayConfig, root } = loadConfigAndProtos(routesFile);
    t.equal(
      gatewayConfig.nats.auth?.credsFile,
      join(gatewayDir, "gateway.creds"),
      "the relative creds path resolves against the routes file's directory",
    );

    const workerNc = await connectNats(config(server.url, setup.writeCreds(join(dir, "w.creds"))), {
      signal: AbortSignal.timeout(5000),
    });
    t.teardown(() => workerNc.close());
    const seen: SeenRequest[] = [];
    const workers = startUsersWorker(workerNc, root, seen);
    t.teardown(async () => {
      for (const worker of workers) await worker.stop();
    });
    await workerNc.flush();

    const gateway = await startLoopbackGateway({ config: gatewayConfig, root });
    t.teardown(() => gateway.close());
    await gateway.connected;

    const res = await fetch(`${gateway.url}/v1/regions/eu/users/u-1`);
    t.equal(res.status, 200);
    t.match(await res.json(), { id: "u-1", region: "eu", display_name: "Ada" });
    t.equal(seen.length, 1, "the worker, on the same account, answered it");
    t.equal(seen[0]?.subject, "svc.users.eu.get");
  },
);

t.test(
  "a creds file renewed on disk is read again at the next connect; one unusable then keeps the last good one",
  async (t) => {
    const file = setup.writeCreds(join(dir, "renewed.creds"));
    const { authenticator } = natsConnectOptions(config("nats://127.0.0.1:4222", file));
    const [auth] = Array.isArray(authenticator) ? authenticator : [authenticator];
    const jwt = () => (auth?.("nonce") as { jwt?: string } | undefined)?.jwt;
    const first = jwt();
    t.match(first, /^[\w-]+\.[\w-]+\.[\w-]+$/, "a JWT from the file");
    setup.writeCreds(file);
    const renewed = jwt();
    t.not(renewed, first, "the renewed file's JWT");
    writeFileSync(file, "half-written\n");
    t.equal(jwt(), renewed, "a file unusable at that moment keeps the last good JWT");
  },
);
