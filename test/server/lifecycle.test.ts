import { once } from "node:events";
import { type AddressInfo, createServer } from "node:net";
import { connect } from "@nats-io/transport-node";
import t from "tap";
import { loadProtos } from "../../src/codec/protos.js";
import { freePort, freePortPair, startNatsServer } from "../../src/devtools/nats-server.js";
import { startWorker } from "../../src/worker/index.js";
import {
  USERS_GET_ROUTE as ROUTE,
  servingUrls,
  spawnServe,
  startIdEchoWorker,
  startUsersGetWorker,
  usersGetServeArgs,
  waitUntil,
} from "../helpers/serve-process.js";
import { PROTO_DIR, startStack, writeRoutes } from "../helpers/stack.js";

/** Polls `url` until `accept(status, body)` holds; bounded by `ms`. */
async function waitFor(
  url: string,
  accept: (status: number, body: string) => boolean,
  ms = 10_000,
) {
  const until = Date.now() + ms;
  let last = "";
  while (Date.now() < until) {
    try {
      const res = await fetch(url);
      last = `${res.status} ${await res.text()}`;
      if (accept(res.status, last)) return last;
    } catch (error) {
      last = String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`gave up waiting for ${url}; last answer: ${last}`);
}

t.test("readiness drops with the reason while NATS is down and recovers by itself", async (t) => {
  const stack = await startStack(t, writeRoutes(ROUTE));
  const readyz = `${stack.gateway.adminUrl}/readyz`;
  const connectedGauge = async () =>
    /^turnout_nats_connected (\d)$/m.exec(
      await (await fetch(`${stack.gateway.adminUrl}/metrics`)).text(),
    )?.[1];
  t.equal((await fetch(readyz)).status, 200, "ready while connected");
  t.equal(await connectedGauge(), "1", "turnout_nats_connected is 1 while connected");
  t.equal((await fetch(`${stack.gateway.adminUrl}/healthz`)).status, 200);

  const port = stack.server.port;
  await stack.server.stop();
  const down = await waitFor(readyz, (status) => status === 503);
  t.match(down, /NATS disconnected since/, "503 names NATS as the reason");
  t.equal(await connectedGauge(), "0", "turnout_nats_connected is 0 while disconnected");
  t.equal((await fetch(`${stack.gateway.adminUrl}/healthz`)).status, 200, "still alive");
  const refused = await fetch(`${stack.gateway.url}/v1/regions/eu/users/u-1`);
  t.equal(refused.status, 503, "requests meanwhile are 503, not hung");

  const again = await startNatsServer({ port });
  const cleanups: Array<() => unknown> = [() => again.stop()];
  t.teardown(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });
  await waitFor(readyz, (status) => status === 200);
  t.pass("ready again after the server came back, with no restart of the gateway");
  t.equal(await connectedGauge(), "1", "turnout_nats_connected is 1 again");

  const nc = await connect({ servers: again.url });
  cleanups.push(() => nc.close());
  const worker = startIdEchoWorker(nc, stack.root);
  cleanups.push(() => worker.stop());
  await nc.flush();
  const res = await fetch(`${stack.gateway.url}/v1/regions/eu/users/u-7`);
  t.equal(res.status, 200, "requests flow again");
});

t.test("SIGTERM finishes the request in flight, drains and exits 0", async (t) => {
  const server = await startNatsServer();
  t.teardown(() => server.stop());
  const nc = await connect({ servers: server.url });
  t.teardown(() => nc.close());
  let received!: () => void;
  const requestArrived = new Promise<void>((resolve) => {
    received = resolve;
  });
  const worker = startWorker({
    nc,
    root: loadProtos([PROTO_DIR]),
    subject: "svc.users.*.get",
    requestType: "users.v1.GetUserRequest",
    responseType: "users.v1.User",
    async handle(req: { id: string }) {
      received();
      await new Promise((resolve) => setTimeout(resolve, 700));
      return { id: req.id };
    },
  });
  t.teardown(() => worker.stop());
  await nc.flush();

  // Port 0 on both listeners: the ports the process got are read from its output,
  // so no other test can take them between a freePort() and the bind.
  const { gateway, output } = spawnServe(
    t,
    usersGetServeArgs(server.url, { port: 0, adminPort: 0 }),
  );
  // Started from the sources through tsx: a cold start on a loaded machine can take a while.
  const { url, adminUrl } = await servingUrls(output, 40_000);
  await waitFor(`${adminUrl}/readyz`, (status) => status === 200, 20_000);

  const inFlight = fetch(`${url}/v1/regions/eu/users/u-42`);
  await requestArrived;
  const exited = once(gateway, "exit");
  gateway.kill("SIGTERM");

  const res = await inFlight;
  t.equal(res.status, 200, "the request in flight got its answer");
  t.equal(res.headers.get("connection"), "close", "its keep-alive client is told to let go");
  t.match(await res.text(), /"id":"u-42"/);
  const [code] = await exited;
  t.equal(code, 0, `exit code 0 after the drain; output:\n${output.text}`);
  t.match(output.text, /SIGTERM received, draining/);
  t.match(output.text, /drained/);
  await t.rejects(fetch(`${url}/v1/regions/eu/users/u-1`), "no longer accepting");
});

t.test("--workers 2 serves from two processes and drains both on SIGTERM", async (t) => {
  const server = await startUsersGetWorker(t);

  const [port, adminPort] = await freePortPair();
  const { gateway, output } = spawnServe(t, [
    ...usersGetServeArgs(server.url, { port, adminPort }),
    "--workers",
    "2",
  ]);
  await waitUntil(() => output.text.match(/serving on/g)?.length === 2, 20_000);
  // Fresh connections go round-robin over the workers: a run of ready answers
  // means both are connected to NATS (one listening worker may still connect).
  let readyInARow = 0;
  await waitUntil(async () => {
    const res = await fetch(`http://127.0.0.1:${adminPort}/readyz`, {
      headers: { connection: "close" },
    });
    await res.arrayBuffer();
    readyInARow = res.status === 200 ? readyInARow + 1 : 0;
    return readyInARow >= 6;
  }, 20_000);
  // Each fresh connection may land on either worker; both must answer correctly.
  for (let i = 0; i < 20; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/v1/regions/eu/users/u-${i}`, {
      headers: { connection: "close" },
    });
    t.equal(res.status, 200);
  }
  t.pass("two gateway processes listen");
  t.match(output.text, /starting 2 workers/);

  const exited = once(gateway, "exit");
  gateway.kill("SIGTERM");
  const [code] = await exited;
  t.equal(code, 0, `the primary exits 0 once both workers drained; output:\n${output.text}`);
  t.equal(output.text.match(/drained, bye/g)?.length, 2, "each worker drained");
  t.match(output.text, /2 workers drained/);
});

t.test(
  "serve exits 1 naming the port when it cannot listen, alone or with --workers",
  async (t) => {
    const server = await startNatsServer({ jetstream: true });
    t.teardown(() => server.stop());
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
    t.teardown(() => busy.close());
    const busyPort = (busy.address() as AddressInfo).port;
    for (const workers of [[], ["--workers", "2"]]) {
      const adminPort = await freePort();
      const args = usersGetServeArgs(server.url, { port: busyPort, adminPort });
      const { gateway, output } = spawnServe(t, [...args, ...workers]);
      const [code] = (await Promise.race([
        once(gateway, "exit"),
        new Promise((resolve) => setTimeout(() => resolve(["still running after 20 s"]), 20_000)),
      ])) as [number | string];
      t.equal(code, 1, `exit 1 ${workers.join(" ")}: ${output.text}`);
      t.match(output.text, /cannot listen: (listen|bind) EADDRINUSE/);
    }
  },
);
