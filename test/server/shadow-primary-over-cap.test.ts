/**
 * A legacy primary whose answer is over the comparison cap before it is read
 * (a body read whole that is longer, or a streamed one whose Content-Length
 * says so) is mirrored nowhere: the workers would run a mirror whose result
 * is only counted body_too_large. Counted with that reason all the same. A
 * streamed answer found over the cap as it passes lets go of its mirror then.
 */
import { request as httpGet, type IncomingMessage, type ServerResponse } from "node:http";
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
  if (id === "chunked") return sendChunked(res, 4 * 1024 * 1024);
  sendJson(res, 200, { id, display_name: "x".repeat(NAME_BYTES[id] ?? 0) });
});

/** A JSON answer of about `bytes`, chunked (no Content-Length), written as fast as it drains. */
function sendChunked(res: ServerResponse, bytes: number): void {
  res.writeHead(200, { "content-type": "application/json" });
  const chunk = "x".repeat(64 * 1024);
  let left = Math.ceil(bytes / chunk.length);
  res.write('{"id":"chunked","display_name":"');
  const more = () => {
    while (left > 0) {
      left--;
      if (!res.write(chunk)) return void res.once("drain", more);
    }
    res.end('"}');
  };
  more();
}
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

t.test(
  "a streamed answer lets go of its mirror slot once it passes the cap, not when a slow client has read it all",
  async (t) => {
    const before = tooLarge();
    const { res, done } = await new Promise<{
      res: IncomingMessage;
      done: Promise<number>;
    }>((resolve, reject) => {
      const req = httpGet(`${gateway.url}/v1/old/eu/users/chunked`, (res) => {
        const done = new Promise<number>((finish) => {
          let length = 0;
          res.on("data", (chunk: Buffer) => (length += chunk.length));
          res.on("end", () => finish(length));
        });
        res.pause(); // the client reads nothing for now
        resolve({ res, done });
      });
      req.on("error", reject);
      req.end();
    });
    t.equal(res.statusCode, 200);
    await waitUntil(() => gateway.mirrors.inFlight === 0, 3000);
    t.equal(gateway.mirrors.inFlight, 0, "the slot is free while the client still reads nothing");
    t.equal(tooLarge(), before + 1, "counted body_too_large");
    res.resume();
    t.ok((await done) > 4 * 1024 * 1024, "the client still gets the whole answer");
  },
);
