/**
 * A publish made right after NATS went away: the gateway knows it at once (the
 * connection's disconnect event) and refuses with 503 NOT_CONNECTED, as request
 * mode does, instead of buffering it until the route's timeout (504). The
 * reconnect wait is long here on purpose: nats.js clears `nc.info` only when it
 * dials again, so a check on it would let publishes through for that long.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import t from "tap";
import { loadConfigAndProtos } from "../../src/config/load.js";
import { startNatsServer } from "../../src/devtools/nats-server.js";
import { startGateway } from "../../src/server/start.js";
import { within } from "../helpers/cutover-fixture.js";
import { ordersGetRoute, usersCreateRoute } from "../helpers/route-yaml.js";
import { writeRoutes } from "../helpers/stack.js";

const ROUTES =
  usersCreateRoute({
    subject: "events.users.{region}.created",
    mode: "publish",
    timeout: "500ms",
  }) + ordersGetRoute({ cutover: "{ nats: 100, shadow: 0 }" });

t.test(
  "a publish just after NATS dropped is a 503 NOT_CONNECTED at once, like a request",
  async (t) => {
    const server = await startNatsServer({ jetstream: true });
    t.teardown(() => server.stop());
    const admin = await connect({ servers: server.url });
    await (await jetstreamManager(admin)).streams.add({
      name: "USER_EVENTS",
      subjects: ["events.users.>"],
    });
    await admin.close();
    const { config, root } = loadConfigAndProtos(writeRoutes(ROUTES), { natsUrl: server.url });
    const gateway = await startGateway({
      config,
      root,
      host: "127.0.0.1",
      port: 0,
      adminPort: 0,
      reconnectTimeWaitMs: 2000,
    });
    t.teardown(() => gateway.close());
    await gateway.connected;
    const publish = () =>
      fetch(`${gateway.url}/v1/regions/eu/users`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ id: "u-1" }),
      });
    const before = await publish();
    t.equal(before.status, 202, "published while connected");

    server.process.kill("SIGKILL");
    // Request mode learns it from the disconnect event; wait until it has.
    const notConnected = async () => {
      const res = await fetch(`${gateway.url}/v1/orders/o-1`);
      return ((await res.json()) as { code?: string }).code === "TURNOUT_ERR_NOT_CONNECTED";
    };
    t.ok(await within(5000, notConnected), "a request says NOT_CONNECTED");

    const res = await publish();
    t.equal(res.status, 503, "refused at once, not a 504 after the route's 500 ms timeout");
    t.match(await res.json(), { code: "TURNOUT_ERR_NOT_CONNECTED", route: "users.create" });
  },
);
