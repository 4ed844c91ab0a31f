/**
 * A `tls://` server address requires TLS even without a `nats.tls` block:
 * nats.js ignores the scheme on Node, so the gateway must ask for TLS itself,
 * or a server (or anything listening there) that does not offer TLS would get
 * the CONNECT, user and password included, in clear text.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import t, { type Test } from "tap";
import { connectNats, natsConnectOptions } from "../../../src/backends/nats/connection.js";
import { NatsStatus } from "../../../src/backends/nats/status.js";
import type { NatsConfig } from "../../../src/config/types.js";

const dir = mkdtempSync(join(tmpdir(), "turnout-tls-url-"));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const PASSWORD = "clear-text-would-leak-this";
const passFile = join(dir, "pass");
writeFileSync(passFile, PASSWORD);

/** A plain-TCP "NATS server" asking for auth, offering no TLS, keeping all it receives. */
async function fakePlainServer(t: Test) {
  const received: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("data", (chunk) => received.push(chunk.toString("latin1")));
    socket.on("error", () => {});
    const { port } = server.address() as { port: number };
    socket.write(
      `INFO {"server_id":"FAKE","version":"2.9.10","proto":1,"headers":true,"max_payload":1048576,"auth_required":true,"host":"127.0.0.1","port":${port}}\r\n`,
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const { port } = server.address() as { port: number };
  return { port, received };
}

function config(url: string): NatsConfig {
  const auth = { user: "svc", pass: { file: passFile } };
  return { servers: [url], name: "turnout-tls-url-test", tls: undefined, auth };
}

t.test("a tls:// address without a tls block asks nats.js for TLS (system CAs)", async (t) => {
  t.same(natsConnectOptions(config("tls://127.0.0.1:4222")).tls, {});
  t.equal(
    natsConnectOptions(config("nats://127.0.0.1:4222")).tls,
    undefined,
    "nats:// stays plain",
  );
});

t.test(
  "a tls:// server that offers no TLS never gets the CONNECT (no password in clear text); the error names TLS",
  async (t) => {
    const fake = await fakePlainServer(t);
    const url = `tls://127.0.0.1:${fake.port}`;
    // The CLI commands' single attempt (connectOnce in command-errors.ts) ...
    const err = await connect({ ...natsConnectOptions(config(url)), reconnect: false }).then(
      async (nc) => {
        await nc.close();
        return undefined;
      },
      (e: unknown) => e,
    );
    t.match(String(err), /tls/i, "the connect fails naming TLS");
    // ... and serve's connect loop.
    const status = new NatsStatus();
    await connectNats(config(url), {
      status,
      reconnectTimeWaitMs: 50,
      signal: AbortSignal.timeout(500),
    }).then(
      (nc) => nc.close(),
      () => undefined,
    );
    t.match(status.lastError, /tls/i, "/readyz says why");
    const sent = fake.received.join("");
    t.notMatch(sent, /CONNECT/, "no CONNECT was sent");
    t.notMatch(sent, PASSWORD, "the password never went out in clear text");
  },
);
