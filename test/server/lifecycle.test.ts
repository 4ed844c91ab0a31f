import { spawn } from "node:child_process";
import { once } from "node:events";
import { connect } from "@nats-io/transport-node";
import t from "tap";
import { loadProtos } from "../../src/codec/protos.js";
import { freePort, startNatsServer } from "../../src/devtools/nats-server.js";
import { startWorker } from "../../src/worker/index.js";
import { PROTO_DIR, startStack, writeRoutes } from "../helpers/stack.js";

const ROUTE = `  - name: users.get
    method: GET
    path: /v1/regions/:region/users/:id
    subject: svc.users.{region}.get
    request: users.v1.GetUserRequest
    response: users.v1.User
    timeout: 5s
`;

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
  t.equal((await fetch(readyz)).status, 200, "ready while connected");
  t.equal((await fetch(`${stack.gateway.adminUrl}/healthz`)).status, 200);

  const port = stack.server.port;
  await stack.server.stop();
  const down = await waitFor(readyz, (status) => status === 503);
  t.match(down, /NATS disconnected since/, "503 names NATS as the reason");
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

  const nc = await connect({ servers: again.url });
  cleanups.push(() => nc.close());
  const worker = startWorker({
    nc,
    root: stack.root,
    subject: "svc.users.*.get",
    requestType: "users.v1.GetUserRequest",
    responseType: "users.v1.User",
    handle: (req: { id: string }) => ({ id: req.id }),
  });
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

  const [port, adminPort] = [await freePort(), await freePort()];
  const gateway = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "src/cli/main.ts",
      "serve",
      "--config",
      writeRoutes(ROUTE),
      "--nats-url",
      server.url,
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--admin-port",
      String(adminPort),
    ],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, TURNOUT_LOG_LEVEL: "warn" } },
  );
  t.teardown(() => gateway.kill("SIGKILL"));
  let output = "";
  gateway.stdout.on("data", (chunk) => (output += chunk));
  gateway.stderr.on("data", (chunk) => (output += chunk));
  await waitFor(`http://127.0.0.1:${adminPort}/readyz`, (status) => status === 200, 20_000);

  const inFlight = fetch(`http://127.0.0.1:${port}/v1/regions/eu/users/u-42`);
  await requestArrived;
  const exited = once(gateway, "exit");
  gateway.kill("SIGTERM");

  const res = await inFlight;
  t.equal(res.status, 200, "the request in flight got its answer");
  t.match(await res.text(), /"id":"u-42"/);
  const [code] = await exited;
  t.equal(code, 0, `exit code 0 after the drain; output:\n${output}`);
  t.match(output, /SIGTERM received, draining/);
  t.match(output, /drained/);
  await t.rejects(fetch(`http://127.0.0.1:${port}/v1/regions/eu/users/u-1`), "no longer accepting");
});
