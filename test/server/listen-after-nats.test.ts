/**
 * `listenAfterNats` (a --workers replacement): no listener opens before NATS is
 * connected and the live cutover state loaded; the wait is bounded (then both listen, not ready, /readyz says
 * why) and ends at once when the start is aborted (a stop signal).
 */
import { connect } from "@nats-io/transport-node";
import t, { type Test } from "tap";
import { loadConfigAndProtos } from "../../src/config/load.js";
import { freePort, freePortPair, startNatsServer } from "../../src/devtools/nats-server.js";
import { type RunningGateway, startGateway } from "../../src/server/start.js";
import { USERS_GET_ROUTE } from "../helpers/serve-process.js";
import { writeRoutes } from "../helpers/stack.js";

/** Starts a gateway on fixed free ports (known before it listens); `started` settles with it. */
async function startWaiting(
  t: Test,
  natsUrl: string,
  listenAfterNats: { maxWaitMs: number; abort?: AbortSignal },
) {
  const { config, root } = loadConfigAndProtos(writeRoutes(USERS_GET_ROUTE), { natsUrl });
  const [port, adminPort] = await freePortPair();
  const startedAt = Date.now();
  const started = startGateway({
    config,
    root,
    host: "127.0.0.1",
    port,
    adminPort,
    logger: false,
    otel: false,
    reconnectTimeWaitMs: 50,
    listenAfterNats,
  }).then((gateway: RunningGateway) => {
    t.teardown(() => gateway.close());
    return { gateway, afterMs: Date.now() - startedAt };
  });
  const answers = (onPort: number, path: string) =>
    fetch(`http://127.0.0.1:${onPort}${path}`, { signal: AbortSignal.timeout(2000) }).then(
      async (res) => `${res.status} ${await res.text()}`,
      (error: Error & { cause?: { code?: string } }) => error.cause?.code ?? error.message,
    );
  return {
    started,
    public: () => answers(port, "/no-such-route"),
    readyz: () => answers(adminPort, "/readyz"),
  };
}

/** A NATS URL nothing listens on: every connect attempt is refused. */
async function deadNatsUrl(): Promise<string> {
  return `nats://127.0.0.1:${await freePort()}`;
}

t.test(
  "NATS unreachable: neither listener opens until maxWaitMs, then both, not ready",
  async (t) => {
    const gateway = await startWaiting(t, await deadNatsUrl(), { maxWaitMs: 800 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    t.equal(await gateway.public(), "ECONNREFUSED", "the public port is not open yet");
    t.equal(await gateway.readyz(), "ECONNREFUSED", "the admin port is not open yet");
    const { afterMs } = await gateway.started;
    t.ok(afterMs >= 800, `listening after the bound (${afterMs} ms)`);
    t.match(await gateway.readyz(), /^503 .*NATS/, "/readyz says why it is not ready");
  },
);

t.test("aborted (a stop signal): the wait ends at once", async (t) => {
  const abort = new AbortController();
  const gateway = await startWaiting(t, await deadNatsUrl(), {
    maxWaitMs: 60_000,
    abort: abort.signal,
  });
  setTimeout(() => abort.abort(), 200);
  const { afterMs } = await gateway.started;
  t.ok(afterMs < 5000, `started ${afterMs} ms after, not after the bound`);
});

t.test("NATS reachable: the listeners open once connected", async (t) => {
  const server = await startNatsServer();
  t.teardown(() => server.stop());
  const gateway = await startWaiting(t, server.url, { maxWaitMs: 60_000 });
  const { gateway: running } = await gateway.started;
  t.ok(running.natsStatus.isConnected(), "connected before listening");
  t.match(await gateway.public(), /^404 /, "the public listener answers");
});

t.test(
  "JetStream not answering: no listener opens before the live cutover state loads or maxWaitMs passes",
  async (t) => {
    const server = await startNatsServer();
    t.teardown(() => server.stop());
    // A JetStream that takes requests and never answers (a cluster without quorum).
    const nc = await connect({ servers: server.url });
    t.teardown(() => nc.close());
    nc.subscribe("$JS.API.>", { callback: () => {} });
    await nc.flush();
    const gateway = await startWaiting(t, server.url, { maxWaitMs: 1500 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    t.equal(await gateway.public(), "ECONNREFUSED", "connected, but the public port is not open");
    const { gateway: running, afterMs } = await gateway.started;
    t.ok(running.natsStatus.isConnected(), "NATS was connected all along");
    t.ok(afterMs >= 1500, `listening after the bound (${afterMs} ms)`);
    t.match(await gateway.readyz(), /^503 .*live cutover state not loaded yet/);
  },
);

t.test(
  "JetStream answering: the listeners open with the live state loaded, ready at once",
  async (t) => {
    const server = await startNatsServer({ jetstream: true });
    t.teardown(() => server.stop());
    const gateway = await startWaiting(t, server.url, { maxWaitMs: 60_000 });
    await gateway.started;
    t.match(await gateway.readyz(), /^200 /, "the first /readyz after listening");
  },
);
