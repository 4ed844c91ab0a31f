/**
 * A client that leaves before its answer is counted and logged once, as nginx's
 * 499 (client closed request), on the backend that was serving it: Fastify runs
 * no onResponse hook for a destroyed response, so these requests used to be
 * missing from turnout_requests_total and the request log.
 */
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import t from "tap";
import { listenOnLoopback } from "../helpers/legacy-server.js";
import { infoLogLines } from "../helpers/log-lines.js";
import { ordersGetRoute, usersGetRoute } from "../helpers/route-yaml.js";
import { usersGetWorker } from "../helpers/routes-and-workers.js";
import { waitUntil } from "../helpers/serve-process.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

/** A legacy upstream that reads requests and never answers. */
let legacyArrivals = 0;
const silent = net.createServer((socket) => {
  socket.on("error", () => {});
  socket.on("data", () => legacyArrivals++);
});
const upstreamUrl = await listenOnLoopback(t, silent);

const { logger, lines } = infoLogLines();
/** The request lines of `route`. */
const requestLines = (route: string) =>
  lines
    .map((line) => JSON.parse(line) as { msg: string; route: string; backend: string })
    .filter((line) => line.msg === "request" && line.route === route);
const routes =
  usersGetRoute({ timeout: "10s" }) +
  ordersGetRoute({ legacy: "orders", cutover: "{ nats: 0 }", timeout: "10s" });
const stack = await startStack(t, writeRoutes(routes, `legacy:\n  orders: ${upstreamUrl}\n`), {
  logger,
});
const port = Number(new URL(stack.gateway.url).port);

let natsArrivals = 0;
let release!: () => void;
const released = new Promise<void>((resolve) => (release = resolve));
const worker = usersGetWorker(stack.nc, stack.root, async (req: { id: string }) => {
  natsArrivals++;
  await released;
  return { id: req.id };
});
t.teardown(() => worker.stop());
t.teardown(() => release());
await stack.nc.flush();

async function counted(route: string, backend: string, code: number): Promise<number> {
  const text = await (await fetch(`${stack.gateway.adminUrl}/metrics`)).text();
  const pattern = new RegExp(
    `^turnout_requests_total\\{route="${route}",backend="${backend}",code="${code}"\\} (\\d+)$`,
    "m",
  );
  return Number(pattern.exec(text)?.[1] ?? 0);
}

/** Sends a GET, waits until `arrived()` says the backend has it, then leaves. */
async function leaveWhileServed(path: string, arrived: () => boolean): Promise<void> {
  const socket = net.connect(port, "127.0.0.1", () =>
    socket.write(`GET ${path} HTTP/1.1\r\nHost: gw\r\n\r\n`),
  );
  socket.on("error", () => {});
  await waitUntil(arrived, 5000);
  socket.destroy();
  // Let the gateway see the close before the backend answers.
  await sleep(100);
}

t.test(
  "a client leaving while a NATS worker holds its request is counted as 499 nats",
  async (t) => {
    await leaveWhileServed("/v1/regions/eu/users/u-1", () => natsArrivals === 1);
    release();
    await waitUntil(async () => (await counted("users.get", "nats", 499)) === 1, 5000);
    t.equal(await counted("users.get", "nats", 499), 1, "counted once, as 499");
    t.equal(await counted("users.get", "nats", 200), 0, "not as the answer it never got");
    const logged = requestLines("users.get");
    t.match(logged, [{ backend: "nats", status: 499 }], "one request line");
  },
);

t.test("a client leaving while legacy holds its request is counted as 499 legacy", async (t) => {
  await leaveWhileServed("/v1/orders/o-1", () => legacyArrivals === 1);
  await waitUntil(async () => (await counted("orders.get", "legacy", 499)) === 1, 5000);
  t.equal(await counted("orders.get", "legacy", 499), 1, "counted once, as 499");
  const logged = requestLines("orders.get");
  t.match(logged, [{ backend: "legacy", status: 499 }], "one request line");
  t.equal(logged.length, 1);
});
