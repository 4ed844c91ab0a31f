/**
 * A gateway whose NATS user loses the right to subscribe to its reply inbox (a
 * server restarted with narrower permissions): requests are refused at once
 * (503, not a 504 after each timeout), /readyz says why, the log names the
 * permission, and requests are answered again once the server grants it.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import t, { type Test } from "tap";
import { loadProtos } from "../../../src/codec/protos.js";
import { loadConfigAndProtos } from "../../../src/config/load.js";
import { type NatsServer, startNatsServer } from "../../../src/devtools/nats-server.js";
import { infoLogLines } from "../../helpers/log-lines.js";
import { usersGetRoute } from "../../helpers/route-yaml.js";
import { startIdEchoWorker, waitUntil } from "../../helpers/serve-process.js";
import { PROTO_DIR, startLoopbackGateway, writeRoutes } from "../../helpers/stack.js";

const dir = mkdtempSync(join(tmpdir(), "turnout-inbox-"));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const conf = join(dir, "nats.conf");

/** Restarts the server (same port) with the gateway user's subscribe permission, and a worker. */
async function serverGranting(t: Test, subscribe: string, port?: number): Promise<NatsServer> {
  writeFileSync(
    conf,
    `authorization { users: [\n  { user: gw, password: gw, permissions: { publish: ">", subscribe: ${subscribe} } },\n  { user: wk, password: wk }\n] }\n`,
  );
  const server = await startNatsServer({ port, args: ["-c", conf] });
  t.teardown(() => server.stop());
  const nc = await connect({ servers: server.url, user: "wk", pass: "wk" });
  const worker = startIdEchoWorker(nc, loadProtos([PROTO_DIR]));
  t.teardown(async () => {
    await worker.stop();
    await nc.close();
  });
  await nc.flush();
  return server;
}

t.test(
  "a refused reply inbox: 503 at once, not ready with the reason, and back once granted",
  async (t) => {
    let server = await serverGranting(t, '">"');
    const password = join(dir, "password");
    writeFileSync(password, "gw\n");
    const routes = writeRoutes(
      usersGetRoute({ timeout: "20s" }),
      `  auth: { user: gw, pass: { file: ${password} } }\n`,
    );
    const { config, root } = loadConfigAndProtos(routes, { natsUrl: server.url });
    const { logger, lines } = infoLogLines();
    const gateway = await startLoopbackGateway({ config, root, logger });
    t.teardown(() => gateway.close());
    await gateway.connected;
    const get = () => fetch(`${gateway.url}/v1/regions/eu/users/7`);
    t.equal((await get()).status, 200, "answered while the inbox is granted");

    const port = server.port;
    await server.stop();
    server = await serverGranting(t, '"svc.>"', port);
    const readyz = () => fetch(`${gateway.adminUrl}/readyz`).then((res) => res.text());
    await waitUntil(async () => /reply inbox/.test(await readyz()), 15_000);
    t.match(JSON.parse(await readyz()), {
      status: "not ready",
      reasons: [/^NATS refused the reply inbox subscription: Permissions Violation/],
    });
    const refused = await get();
    t.equal(refused.status, 503, "refused at once, not a 504 after the route's 20 s");
    t.match(await refused.json(), { code: "TURNOUT_ERR_NOT_CONNECTED", detail: /reply inbox/ });
    t.ok(
      lines.some((line) =>
        /"level":50.*Permissions Violation for Subscription to \\"_INBOX/.test(line),
      ),
      "logged at error",
    );

    await server.stop();
    server = await serverGranting(t, '">"', port);
    await waitUntil(async () => (await get()).status === 200, 15_000);
    t.match(JSON.parse(await readyz()), { status: "ready" });
  },
);
