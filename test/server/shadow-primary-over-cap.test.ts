/**
 * A legacy primary whose answer is over the comparison cap before it is read
 * (a body read whole that is longer, or a streamed one whose Content-Length
 * says so) is mirrored nowhere: the workers would run a mirror whose result
 * is only counted body_too_large. Counted with that reason all the same.
 */
import { connect } from "@nats-io/transport-node";
import t from "tap";
import { loadConfigAndProtos } from "../../src/config/load.js";
import { startNatsServer } from "../../src/devtools/nats-server.js";
import { sendJson, startLegacyServer } from "../helpers/legacy-server.js";
import { usersLegacyRoute } from "../helpers/route-yaml.js";
import { usersGetWorker } from "../helpers/routes-and-workers.js";
import { waitUntil } from "../helpers/serve-process.js";
import { startLoopbackGateway, writeRoutes } from "../helpers/stack.js";

/** The comparison cap here: 4 KiB, so a body read whole (up to 64 KiB) can be over it. */
const CAP = 4096;
/** The legacy answer by user id: its display name's length. */
const NAME_BYTES: Record<string, number> = { small: 10, whole: 8 * 1024, streamed: 100 * 1024 };

const legacy = await startLegacyServer((request, res) => {
  const id = request.url.split("/").at(-1) ?? "";
  sendJson(res, 200, { id, display_name: "x".repeat(NAME_BYTES[id] ?? 0) });
});
t.teardown(() => legacy.close());

const server = await startNatsServer();
t.teardown(() => server.stop());
const routes = writeRoutes(
  usersLegacyRoute({ cutover: "{ nats: 0, shadow: 100 }" }),
  `legacy:\n  users: ${legacy.url}\n`,
);
const { config, root } = loadConfigAndProtos(routes, { natsUrl: server.url });
const gateway = await startLoopbackGateway({ config, root, mirrorLimits: { maxBodyBytes: CAP } });
t.teardown(() => gateway.close());
await gateway.connected;
await gateway.cutoverStore.settled;

const nc = await connect({ servers: server.url });
t.teardown(() => nc.close());
const mirrored: string[] = [];
const worker = usersGetWorker(nc, root, (req: { id: string }) => {
  mirrored.push(req.id);
  return { id: req.id };
});
t.teardown(() => worker.stop());
await nc.flush();

const tooLarge = () => gateway.metrics.shadowSkipped.cell("users.legacy", "body_too_large").value;

async function get(id: string): Promise<void> {
  const res = await fetch(`${gateway.url}/v1/old/eu/users/${id}`);
  t.equal(res.status, 200, id);
  const body = (await res.json()) as { display_name: string };
  t.equal(body.display_name.length, NAME_BYTES[id], `${id}: the whole answer`);
  await waitUntil(() => gateway.mirrors.inFlight === 0, 5000);
}

t.test("an answer within the cap is mirrored to the workers", async (t) => {
  await get("small");
  await waitUntil(() => mirrored.length === 1, 5000);
  t.same(mirrored, ["small"]);
});

t.test(
  "a legacy answer already known to be over the cap sends no NATS mirror and is counted body_too_large",
  async (t) => {
    for (const id of ["whole", "streamed"]) {
      const before = { tooLarge: tooLarge(), mirrored: mirrored.length };
      await get(id);
      // A mirror sent would have reached the worker by now: the one above did at once.
      await nc.flush();
      await new Promise((resolve) => setTimeout(resolve, 200));
      t.equal(mirrored.length, before.mirrored, `${id}: no mirror reached the workers`);
      t.equal(tooLarge(), before.tooLarge + 1, `${id}: counted body_too_large`);
    }
  },
);
