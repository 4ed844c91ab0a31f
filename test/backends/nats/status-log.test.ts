/**
 * The gateway logs its NATS connection's troubles and recovery: a warning when
 * it is lost or an attempt fails, an info line when it is back, each once per
 * change rather than once per reconnect attempt.
 */
import type { NatsConnection, Status } from "@nats-io/transport-node";
import t from "tap";
import { NATS_LOG_REPEAT_MS, NatsStatus } from "../../../src/backends/nats/status.js";
import { loadConfigAndProtos } from "../../../src/config/load.js";
import { startNatsServer } from "../../../src/devtools/nats-server.js";
import { infoLogLines } from "../../helpers/log-lines.js";
import { USERS_GET_ROUTE, waitUntil } from "../../helpers/serve-process.js";
import { startLoopbackGateway, writeRoutes } from "../../helpers/stack.js";

/** A NatsStatus log that keeps its lines as "level message". */
function recordingLog() {
  const lines: string[] = [];
  const log = {
    info: (m: string) => lines.push(`info ${m}`),
    warn: (m: string) => lines.push(`warn ${m}`),
    error: (m: string) => lines.push(`error ${m}`),
  };
  return { lines, log };
}

t.test("failed attempts are logged once per error, again only after a while", async (t) => {
  let clock = Date.parse("2030-01-01T00:00:00Z");
  const { lines, log } = recordingLog();
  const status = new NatsStatus(() => new Date(clock), undefined, log);
  for (let attempt = 0; attempt < 20; attempt++, clock += 1000) {
    status.failed(new Error("connection refused"));
  }
  t.same(lines, ["warn NATS: connect attempt failed: connection refused"], "one line for 20");
  status.failed(new Error("Authorization Violation"));
  t.equal(lines.length, 2, "another error is logged at once");
  clock += NATS_LOG_REPEAT_MS;
  status.failed(new Error("connection refused"));
  t.equal(lines.length, 3, "the same error again after a while");
});

t.test("a long outage gets one reminder per while, and its end one info line", async (t) => {
  let clock = Date.parse("2030-01-01T00:00:00Z");
  const { lines, log } = recordingLog();
  const status = new NatsStatus(() => new Date(clock), undefined, log);
  // A connection whose status events the test sends.
  const events: Status[] = [];
  let wake = () => {};
  const nc = {
    getServer: () => "127.0.0.1:4222",
    closed: () => new Promise(() => {}),
    async *status() {
      for (;;) {
        const next = events.shift();
        if (next !== undefined) yield next;
        else await new Promise<void>((resolve) => (wake = resolve));
      }
    },
  } as unknown as NatsConnection;
  const send = async (event: Status) => {
    events.push(event);
    wake();
    await new Promise((resolve) => setImmediate(resolve));
  };
  status.attach(nc);
  await send({ type: "disconnect", server: "127.0.0.1:4222" });
  for (let attempt = 0; attempt < 29; attempt++, clock += 1000) {
    await send({ type: "reconnecting" });
  }
  clock += 1000;
  await send({ type: "reconnecting" });
  await send({ type: "reconnecting" });
  await send({ type: "reconnect", server: "127.0.0.1:4222" });
  t.match(lines, [
    "info NATS: connected to 127.0.0.1:4222",
    "warn NATS: lost the connection to 127.0.0.1:4222; reconnecting",
    /^warn NATS disconnected since 2030-01-01T00:00:00.000Z; still reconnecting$/,
    "info NATS: reconnected to 127.0.0.1:4222 after 30.0 s disconnected",
  ]);
  t.equal(lines.length, 4);
});

t.test(
  "a gateway logs losing NATS once at warn, and why once, whatever the attempts, and its reconnect at info",
  async (t) => {
    const server = await startNatsServer();
    t.teardown(() => server.stop());
    const { logger, lines } = infoLogLines();
    const { config, root } = loadConfigAndProtos(writeRoutes(USERS_GET_ROUTE), {
      natsUrl: server.url,
    });
    const gateway = await startLoopbackGateway({ config, root, logger });
    t.teardown(() => gateway.close());
    await gateway.connected;
    const nats = () => lines.filter((line) => line.includes('"msg":"NATS: '));
    await waitUntil(() => nats().some((l) => /NATS: connected to/.test(l)), 5000);

    await server.stop();
    await waitUntil(() => nats().some((l) => /lost the connection/.test(l)), 5000);
    // About 20 reconnect attempts (100 ms apart in tests) while it is down.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const again = await startNatsServer({ port: server.port });
    t.teardown(() => again.stop());
    await waitUntil(() => nats().some((l) => /reconnected to/.test(l)), 10_000);

    const [connected, lost, cause, reconnected, ...more] = nats();
    t.match(connected, /"level":30,.*"msg":"NATS: connected to .*:\d+"/);
    t.match(lost, /"level":40,.*"msg":"NATS: lost the connection to .*; reconnecting"/);
    t.match(
      cause,
      /"level":40,.*"msg":"NATS: reconnect attempt failed: .*refused/i,
      "why, once: the gateway's own attempt (nats.js's are silent)",
    );
    t.match(
      reconnected,
      /"level":30,.*"msg":"NATS: reconnected to .* after \d+\.\d s disconnected"/,
    );
    t.same(more, [], "nothing else: one line per change and cause, not per attempt");
  },
);
