import { connect } from "@nats-io/transport-node";
import t from "tap";
import { startNatsServer } from "../../src/devtools/nats-server.js";

t.test("startNatsServer runs a real server that accepts clients and stops cleanly", async (t) => {
  const server = await startNatsServer();
  const nc = await connect({ servers: server.url });
  const sub = nc.subscribe("ping", { max: 1 });
  nc.publish("ping", "hello");
  for await (const msg of sub) t.equal(msg.string(), "hello");
  await nc.close();
  await server.stop();
  t.not(server.process.exitCode ?? server.process.signalCode, null, "process has exited");
});
