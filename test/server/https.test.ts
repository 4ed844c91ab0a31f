import { readFileSync } from "node:fs";
import { connect as tlsConnect } from "node:tls";
import t from "tap";
import { Agent, fetch } from "undici";
import { makeCerts } from "../helpers/certs.js";
import { usersGetRoute } from "../helpers/route-yaml.js";
import { startIdEchoWorker } from "../helpers/serve-process.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

const ROUTE = usersGetRoute();

const certs = makeCerts(t.testdir());
const stack = await startStack(t, writeRoutes(ROUTE), {
  listener: {
    https: { cert: readFileSync(certs.server.cert), key: readFileSync(certs.server.key) },
    requestTimeoutMs: 500,
  },
});
const worker = startIdEchoWorker(stack.nc, stack.root);
t.teardown(() => worker.stop());
await stack.nc.flush();
const trusting = new Agent({ connect: { ca: readFileSync(certs.ca.cert) } });
t.teardown(() => trusting.close());

t.test("both listeners speak HTTPS with the given certificate", async (t) => {
  t.match(stack.gateway.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  t.match(stack.gateway.adminUrl, /^https:\/\//);
  const res = await fetch(`${stack.gateway.url}/v1/regions/eu/users/u-1`, { dispatcher: trusting });
  t.equal(res.status, 200);
  t.match(await res.text(), /"id":"u-1"/);
  const health = await fetch(`${stack.gateway.adminUrl}/healthz`, { dispatcher: trusting });
  t.equal(health.status, 200);
});

t.test("a client that does not trust the CA is refused", async (t) => {
  await t.rejects(fetch(`${stack.gateway.url}/v1/regions/eu/users/u-1`));
});

t.test("a client that trickles its request is cut off after the request timeout", async (t) => {
  const port = Number(new URL(stack.gateway.url).port);
  const socket = tlsConnect({ host: "127.0.0.1", port, ca: readFileSync(certs.ca.cert) });
  await new Promise<void>((resolve) => socket.once("secureConnect", () => resolve()));
  let answer = "";
  socket.on("data", (chunk: Buffer) => {
    answer += chunk.toString();
  });
  // Headers never finished: a slowloris client.
  socket.write("GET /v1/regions/eu/users/u-1 HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  const closed = await new Promise<boolean>((resolve) => {
    const guard = setTimeout(() => resolve(false), 5000);
    socket.once("close", () => {
      clearTimeout(guard);
      resolve(true);
    });
  });
  t.ok(closed, "the server closed the connection");
  t.match(answer, /^HTTP\/1\.1 408/, "with 408 Request Timeout");
  socket.destroy();
});
