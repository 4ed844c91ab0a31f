/**
 * Credentials refused on reconnect (a NATS server restarted mid-rotation) do
 * not close the connection for good: the gateway keeps reconnecting, and a
 * password file renewed on disk is read again on the next attempt.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { loadConfigAndProtos } from "../../../src/config/load.js";
import { type NatsServer, startNatsServer } from "../../../src/devtools/nats-server.js";
import { USERS_GET_ROUTE, waitUntil } from "../../helpers/serve-process.js";
import { startLoopbackGateway, writeRoutes } from "../../helpers/stack.js";

const dir = mkdtempSync(join(tmpdir(), "turnout-reconnect-auth-"));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const conf = join(dir, "nats.conf");
const passFile = join(dir, "pass");

t.test(
  "refused credentials during a restart do not stop reconnecting; a renewed password file is used",
  async (t) => {
    let server: NatsServer | undefined;
    t.teardown(() => server?.stop());
    /** (Re)starts the server on its port, taking only `password` for user svc. */
    const restart = async (password: string) => {
      await server?.stop();
      writeFileSync(conf, `authorization { user: svc, password: ${password} }\n`);
      server = await startNatsServer({ port: server?.port, args: ["-c", conf] });
    };
    await restart("right");
    writeFileSync(passFile, "right\n");
    const routes = writeRoutes(USERS_GET_ROUTE, `  auth: {user: svc, pass: {file: ${passFile}}}\n`);
    const { config, root } = loadConfigAndProtos(routes, { natsUrl: server?.url });
    const gateway = await startLoopbackGateway({ config, root });
    t.teardown(() => gateway.close());
    const ready = async () => (await fetch(`${gateway.adminUrl}/readyz`)).status === 200;
    await waitUntil(ready, 10_000);

    await restart("other");
    // nats.js gives up for good after two refusals in a row unless told not to.
    await waitUntil(() => /Authorization/i.test(gateway.natsStatus.lastError ?? ""), 10_000);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    t.equal(await ready(), false, "not ready while the server refuses the password");

    await restart("right");
    await waitUntil(ready, 30_000).catch(() => t.fail(gateway.natsStatus.describe()));
    t.ok(await ready(), "ready again once the server takes the password");

    writeFileSync(passFile, "rotated\n");
    await restart("rotated");
    await waitUntil(ready, 30_000).catch(() => t.fail(gateway.natsStatus.describe()));
    t.ok(await ready(), "ready with the password renewed on disk, without a restart");
  },
);
