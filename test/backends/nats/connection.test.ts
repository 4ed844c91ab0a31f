import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { connectNats, natsConnectOptions } from "../../../src/backends/nats/connection.js";
import { NatsStatus } from "../../../src/backends/nats/status.js";
import type { NatsAuth, NatsConfig } from "../../../src/config/types.js";
import { freePort, startNatsServer } from "../../../src/devtools/nats-server.js";
import { TurnoutError } from "../../../src/errors.js";
import { startNatsCluster } from "../../helpers/nats-cluster.js";
import { waitUntil } from "../../helpers/serve-process.js";

const dir = mkdtempSync(join(tmpdir(), "turnout-nats-conn-"));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function config(url: string, auth?: NatsAuth): NatsConfig {
  return { servers: [url], name: "turnout-test", tls: undefined, auth };
}

function secretFile(name: string, content: string): string {
  const file = join(dir, name);
  writeFileSync(file, content);
  return file;
}

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

t.test("token auth with the token from an env var and from a file", async (t) => {
  const server = await startNatsServer({ args: ["--auth", "s3cret"] });
  t.teardown(() => server.stop());
  process.env.TURNOUT_TEST_NATS_TOKEN = "s3cret";
  t.teardown(() => delete process.env.TURNOUT_TEST_NATS_TOKEN);
  const fromEnv = await connectNats(
    config(server.url, { token: { env: "TURNOUT_TEST_NATS_TOKEN" } }),
  );
  await fromEnv.flush();
  await fromEnv.close();
  // an editor's trailing newline is not part of the secret
  const file = secretFile("token", "s3cret\n");
  const fromFile = await connectNats(config(server.url, { token: { file } }));
  await fromFile.flush();
  t.equal(fromFile.info?.client_id !== undefined, true, "connected with the file's token");
  await fromFile.close();
});

t.test("user/pass auth with the password from a file", async (t) => {
  const server = await startNatsServer({ args: ["--user", "u", "--pass", "p"] });
  t.teardown(() => server.stop());
  const file = secretFile("pass", "p");
  const nc = await connectNats(config(server.url, { user: "u", pass: { file } }));
  await nc.flush();
  t.equal(nc.isClosed(), false);
  await nc.close();
});

t.test(
  "refused credentials are retried, the secret file read again each time, until accepted",
  async (t) => {
    const server = await startNatsServer({ args: ["--auth", "s3cret"] });
    t.teardown(() => server.stop());
    const status = new NatsStatus();
    const file = secretFile("wrong", "nope");
    const connecting = connectNats(config(server.url, { token: { file } }), {
      status,
      reconnectTimeWaitMs: 100,
    });
    await waitUntil(() => /Authorization/i.test(status.lastError ?? ""), 10_000);
    t.equal(status.isConnected(), false, "refused: not connected");
    writeFileSync(file, "s3cret");
    const nc = await connecting;
    t.teardown(() => nc.close());
    t.equal(status.isConnected(), true, "connected once the file holds the accepted token");
  },
);

t.test("a missing env var is a config error naming the variable and the setting", async (t) => {
  delete process.env.TURNOUT_TEST_MISSING;
  const cfg = config("nats://127.0.0.1:1", { token: { env: "TURNOUT_TEST_MISSING" } });
  t.throws(() => natsConnectOptions(cfg), {
    code: "TURNOUT_ERR_CONFIG",
    message: /nats\.auth\.token: environment variable TURNOUT_TEST_MISSING is not set/,
  });
  const err = await connectNats(cfg).catch((e) => e);
  t.ok(
    err instanceof TurnoutError && err.code === "TURNOUT_ERR_CONFIG",
    "connectNats rejects with it",
  );
});

t.test("a missing secret file is a config error naming the file", async (t) => {
  const missing = join(dir, "no-such-file");
  t.throws(
    () => natsConnectOptions(config("nats://127.0.0.1:1", { user: "u", pass: { file: missing } })),
    {
      code: "TURNOUT_ERR_CONFIG",
      message: new RegExp(`nats\\.auth\\.pass: cannot read secret file ${missing} \\(ENOENT\\)`),
    },
  );
});

t.test("a missing TLS file is a config error naming it", async (t) => {
  const cfg: NatsConfig = { ...config("tls://127.0.0.1:1"), tls: { ca: join(dir, "ca.pem") } };
  t.throws(() => natsConnectOptions(cfg), { message: /nats\.tls\.ca: cannot read .*ca\.pem/ });
});

t.test("the options reconnect forever, with jitter and without async traces", async (t) => {
  const opts = natsConnectOptions(config("nats://127.0.0.1:4222"), { name: "replica-1" });
  t.equal(opts.maxReconnectAttempts, -1);
  t.ok((opts.reconnectJitter ?? 0) > 0, "jitter");
  t.equal(opts.noAsyncTraces, true);
  t.equal(opts.name, "replica-1");
});

t.test(
  "connecting while NATS is down does not fail: it connects once the server appears",
  async (t) => {
    const port = await freePort();
    const status = new NatsStatus();
    const pending = connectNats(config(`nats://127.0.0.1:${port}`), {
      status,
      reconnectTimeWaitMs: 50,
    });
    await until("a failed attempt", () => status.lastError !== undefined);
    t.equal(status.isConnected(), false);
    t.match(status.describe(), /^NATS not connected yet since .*last error/);
    const server = await startNatsServer({ port });
    t.teardown(() => server.stop());
    const nc = await pending;
    t.teardown(() => nc.close());
    t.equal(status.isConnected(), true);
    t.match(status.describe(), new RegExp(`connected to .*${port}`));
  },
);

t.test("the status follows a disconnect and the reconnect that ends it", async (t) => {
  const server = await startNatsServer();
  const status = new NatsStatus();
  const nc = await connectNats(config(server.url), { status, reconnectTimeWaitMs: 50 });
  t.teardown(() => nc.close());
  await server.stop();
  await until("disconnect", () => !status.isConnected());
  t.match(status.describe(), /^NATS disconnected since \d{4}-/);
  t.equal(status.snapshot().state, "disconnected");
  const again = await startNatsServer({ port: server.port });
  t.teardown(() => again.stop());
  await until("reconnect", () => status.isConnected());
  t.equal(status.snapshot().state, "connected");
});

t.test("an abort signal stops the first-connect loop", async (t) => {
  const port = await freePort();
  const controller = new AbortController();
  const pending = connectNats(config(`nats://127.0.0.1:${port}`), {
    signal: controller.signal,
    reconnectTimeWaitMs: 50,
  }).catch((e) => e);
  setTimeout(() => controller.abort(), 100);
  const err = await pending;
  t.equal((err as Error).name, "AbortError");
});

t.test(
  "while reconnecting, the status names why the attempts fail: nats.js keeps its reconnect errors to itself",
  async (t) => {
    const server = await startNatsServer();
    const status = new NatsStatus();
    const nc = await connectNats(config(server.url), { status, reconnectTimeWaitMs: 100 });
    t.teardown(() => nc.close());
    t.equal(status.lastError, undefined);
    await server.stop();
    await waitUntil(() => /refused/i.test(status.lastError ?? ""), 10_000);
    t.match(status.describe(), /^NATS disconnected since .* \(last error: .*refused/i);
  },
);

t.test(
  "a listed server that was down at the first connect is failed over to later (nats.js drops it from its pool)",
  async (t) => {
    const up = await startNatsServer();
    t.teardown(() => up.stop());
    const downPort = await freePort();
    const listed: NatsConfig = {
      ...config(`nats://127.0.0.1:${downPort}`),
      servers: [`nats://127.0.0.1:${downPort}`, up.url],
    };
    // nats.js shuffles the list: of four connections, most tried the down one first.
    const statuses: NatsStatus[] = [];
    for (let i = 0; i < 4; i++) {
      const status = new NatsStatus();
      const nc = await connectNats(listed, { status, reconnectTimeWaitMs: 50 });
      t.teardown(() => nc.close());
      statuses.push(status);
    }
    const later = await startNatsServer({ port: downPort });
    t.teardown(() => later.stop());
    await up.stop();
    const onLater = (status: NatsStatus) =>
      status.isConnected() && (status.snapshot().server ?? "").endsWith(`:${downPort}`);
    await until(
      "every connection on the server that came up",
      () => statuses.every(onLater),
      10_000,
    );
    t.equal(statuses.filter(onLater).length, 4);
  },
);

t.test(
  "a cluster node the servers advertised is dropped from the pool when it leaves, as nats.js does",
  async (t) => {
    const cluster = await startNatsCluster(3, "POOL");
    t.teardown(() => cluster.stop());
    const nc = await connectNats(config(cluster.urls[0]!), { reconnectTimeWaitMs: 50 });
    t.teardown(() => nc.close());
    const listens = () => nc.getServers().map((server) => server.listen);
    await until("the cluster advertised", () => listens().length === 3);
    const leaving = cluster.nodes[2]!;
    await leaving.stop();
    await until("the node dropped", () => !listens().includes(`127.0.0.1:${leaving.port}`));
    t.equal(listens().length, 2);
  },
);
