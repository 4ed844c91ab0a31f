import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { type AddressInfo, connect as netConnect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer as createTlsServer } from "node:tls";
import { connect, type NatsConnection, nkeys } from "@nats-io/transport-node";
import t, { type Test } from "tap";
import { connectNats, natsConnectOptions } from "../../../src/backends/nats/connection.js";
import { NatsStatus } from "../../../src/backends/nats/status.js";
import type { NatsAuth, NatsConfig } from "../../../src/config/types.js";
import { startNatsServer } from "../../../src/devtools/nats-server.js";
import { makeCa, makeCerts } from "../../helpers/certs.js";

const dir = mkdtempSync(join(tmpdir(), "turnout-nats-tls-"));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const certs = makeCerts(dir);
const otherCa = makeCa(dir, "other");

function config(url: string, tls: NatsConfig["tls"]): NatsConfig {
  return { servers: [url], name: "turnout-tls-test", tls, auth: undefined };
}

/** One connect attempt, no retry, so a refusal shows at once. */
function connectOnce(cfg: NatsConfig): Promise<NatsConnection> {
  return connect({
    ...natsConnectOptions(cfg),
    reconnect: false,
    maxReconnectAttempts: 0,
    timeout: 3000,
  });
}

async function echoWorks(t: Test, nc: NatsConnection): Promise<void> {
  const sub = nc.subscribe("tls.echo", {
    callback: (_err, msg) => {
      msg.respond(`echo:${msg.string()}`);
    },
  });
  const reply = await nc.request("tls.echo", "hello", { timeout: 2000 });
  t.equal(reply.string(), "echo:hello", "request/reply over TLS");
  sub.unsubscribe();
}

const serverTls = ["--tls", "--tlscert", certs.server.cert, "--tlskey", certs.server.key];
const verifyTls = [...serverTls, "--tlsverify", "--tlscacert", certs.ca.cert];

t.test(
  "the gateway's connection trusts the configured CA and request/reply works over TLS",
  async (t) => {
    const server = await startNatsServer({ args: serverTls });
    t.teardown(() => server.stop());
    const nc = await connectNats(config(server.url, { ca: certs.ca.cert }));
    t.teardown(() => nc.close());
    await echoWorks(t, nc);
    t.equal(nc.info?.tls_required, true, "the server required TLS");
  },
);

t.test("a server certificate from another CA is refused at once, not retried", async (t) => {
  const server = await startNatsServer({ args: serverTls });
  t.teardown(() => server.stop());
  const started = Date.now();
  const err = await connectOnce(config(server.url, { ca: otherCa.cert })).then(
    async (nc) => {
      await nc.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  t.ok(err instanceof Error, "the connect is rejected");
  t.match(
    String((err as Error & { cause?: unknown }).cause ?? err),
    /certificate|self.signed|verify/i,
    "because the certificate does not verify",
  );
  t.ok(Date.now() - started < 3000, "refused quickly");
});

t.test("a server requiring client certificates accepts the configured cert and key", async (t) => {
  const server = await startNatsServer({ args: verifyTls });
  t.teardown(() => server.stop());
  const nc = await connectNats(
    config(server.url, { ca: certs.ca.cert, cert: certs.client.cert, key: certs.client.key }),
  );
  t.teardown(() => nc.close());
  await echoWorks(t, nc);
});

t.test("a server requiring client certificates refuses a connection without one", async (t) => {
  const server = await startNatsServer({ args: verifyTls });
  t.teardown(() => server.stop());
  const err = await connectOnce(config(server.url, { ca: certs.ca.cert })).then(
    async (nc) => {
      await nc.flush();
      await nc.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  t.ok(err instanceof Error, "the connect is rejected");
  // Under TLS 1.3 the server checks the client's certificate after the client's
  // side of the handshake is done, then sends its alert and closes: the client
  // reads either the alert or, when the close overtakes it on loopback, a reset.
  // The test above, with the same CA plus a client certificate, connects.
  const cause = (err as Error & { cause?: unknown }).cause;
  t.match(
    `${String(err)} ${String(cause)}`,
    /bad certificate|certificate required|ECONNRESET/i,
    "by the TLS handshake",
  );
});

/** A nats-server config file with one nkey user, over TLS; returns the user's seed file. */
function nkeyServerConfig(): { conf: string; seedFile: string } {
  const user = nkeys.createUser();
  const seedFile = join(dir, "user.nk");
  writeFileSync(seedFile, `${new TextDecoder().decode(user.getSeed())}\n`);
  const conf = join(dir, "nkey.conf");
  writeFileSync(
    conf,
    `tls {\n  cert_file: ${JSON.stringify(certs.server.cert)}\n  key_file: ${JSON.stringify(certs.server.key)}\n}\n` +
      `authorization {\n  users: [ { nkey: ${user.getPublicKey()} } ]\n}\n`,
  );
  return { conf, seedFile };
}

t.test("nkey auth over TLS: the seed from a file signs the server's nonce", async (t) => {
  const { conf, seedFile } = nkeyServerConfig();
  const server = await startNatsServer({ args: ["-c", conf] });
  t.teardown(() => server.stop());
  const auth: NatsAuth = { nkeySeed: { file: seedFile } };
  const nc = await connectNats({ ...config(server.url, { ca: certs.ca.cert }), auth });
  t.teardown(() => nc.close());
  await echoWorks(t, nc);
  const other = new TextDecoder().decode(nkeys.createUser().getSeed());
  const otherFile = join(dir, "other.nk");
  writeFileSync(otherFile, other);
  const status = new NatsStatus();
  const refused = await connectNats(
    { ...config(server.url, { ca: certs.ca.cert }), auth: { nkeySeed: { file: otherFile } } },
    { status, signal: AbortSignal.timeout(1500), reconnectTimeWaitMs: 100 },
  ).then(
    (nc) => nc.close(),
    (e: unknown) => e,
  );
  t.match(status.lastError, /Authorization/i, "an unknown nkey is refused");
  t.equal((refused as Error | undefined)?.name, "TimeoutError", "and retried until stopped");
});

t.test(
  "a CA file missing when NATS comes back: the reconnect uses its last good content",
  async (t) => {
    const caCopy = join(dir, "rotating-ca.pem");
    writeFileSync(caCopy, readFileSync(certs.ca.cert));
    let server = await startNatsServer({ args: serverTls });
    const port = server.port;
    t.teardown(() => server.stop());
    const nc = await connectNats(config(server.url, { ca: caCopy }));
    t.teardown(() => nc.close());
    await echoWorks(t, nc);

    rmSync(caCopy); // mid-rotation: the old file removed, the new one not there yet
    await server.stop();
    server = await startNatsServer({ args: serverTls, port });
    const reconnected = async () => {
      const until = Date.now() + 15_000;
      while (Date.now() < until) {
        if (
          await nc.flush().then(
            () => nc.info !== undefined,
            () => false,
          )
        )
          return true;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return false;
    };
    t.ok(await reconnected(), "reconnected without the file, on the CA read before");
    await echoWorks(t, nc);
  },
);

t.test(
  "a client certificate the server requires but is not given: the status names the handshake, not a timeout",
  async (t) => {
    const server = await startNatsServer({ args: verifyTls });
    t.teardown(() => server.stop());
    const status = new NatsStatus();
    const abort = new AbortController();
    const connecting = connectNats(config(server.url, { ca: certs.ca.cert }), {
      status,
      signal: abort.signal,
    }).catch(() => undefined);
    const until = Date.now() + 20_000;
    while (status.lastError === undefined && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    abort.abort();
    await connecting;
    // The server's alert, or its reset explained: either way a certificate, never a timeout.
    t.match(status.lastError, /bad certificate|certificate required|client certificate/i);
  },
);

/**
 * An endpoint that wants the TLS handshake before the server's INFO: a
 * TLS-terminating proxy in front of nats-server (as `tls { handshake_first: true }`
 * in nats-server 2.10+ does). Its INFO says TLS is required, as that server's does.
 */
async function tlsFirstEndpoint(t: Test, natsPort: number): Promise<number> {
  const proxy = createTlsServer(
    { cert: readFileSync(certs.server.cert), key: readFileSync(certs.server.key) },
    (client) => {
      const upstream = netConnect(natsPort, "127.0.0.1");
      client.pipe(upstream);
      let info = true;
      upstream.on("data", (chunk: Buffer) => {
        const text = info
          ? chunk.toString("latin1").replace("INFO {", 'INFO {"tls_required":true,')
          : undefined;
        info = false;
        client.write(text ?? chunk);
      });
      upstream.on("end", () => client.end());
      upstream.on("error", () => client.destroy());
      client.on("error", () => upstream.destroy());
    },
  );
  const sockets = new Set<Socket>();
  proxy.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => proxy.close(() => resolve()));
  });
  return (proxy.address() as AddressInfo).port;
}

t.test("nats.tls.handshakeFirst reaches an endpoint that wants TLS before INFO", async (t) => {
  const server = await startNatsServer();
  t.teardown(() => server.stop());
  const port = await tlsFirstEndpoint(t, server.port);
  const url = `tls://127.0.0.1:${port}`;
  const nc = await connectNats(config(url, { ca: certs.ca.cert, handshakeFirst: true }), {
    status: new NatsStatus(),
    signal: AbortSignal.timeout(10_000),
  });
  t.teardown(() => nc.close());
  await echoWorks(t, nc);
  await t.rejects(
    connectOnce(config(url, { ca: certs.ca.cert })),
    "without it the client waits for an INFO that never comes",
  );
});
