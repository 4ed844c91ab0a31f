/**
 * A drain must not wait on clients that hold a connection without a request
 * in progress (Node stops cutting off slow requests once its server closes),
 * and must end even when a request in progress never completes.
 */
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { connect as tcpConnect } from "node:net";
import { Writable } from "node:stream";
import { connect as tlsConnect } from "node:tls";
import t from "tap";
import { makeCerts } from "../helpers/certs.js";
import { usersCreateRoute, usersGetRoute } from "../helpers/route-yaml.js";
import { startHoldingWorker } from "../helpers/routes-and-workers.js";
import { servingUrls, spawnServe, usersGetServeArgs, waitUntil } from "../helpers/serve-process.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

/** A raw client socket on `url`'s port, with what it received and whether it closed. */
async function rawClient(url: string) {
  const socket = tcpConnect(Number(new URL(url).port), "127.0.0.1");
  const state = { received: "", closed: false };
  socket.on("data", (chunk: Buffer) => (state.received += chunk.toString()));
  socket.on("error", () => {});
  socket.on("close", () => (state.closed = true));
  t.teardown(() => socket.destroy());
  await once(socket, "connect");
  return { socket, state };
}

const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;

t.test(
  "SIGTERM closes connections without a whole request at once, still answers the request in flight and exits 0",
  async (t) => {
    // The worker holds the request in flight until the test lets it go.
    const { server, requestArrived, release } = await startHoldingWorker(t);

    const { gateway, output } = spawnServe(
      t,
      usersGetServeArgs(server.url, { port: 0, adminPort: 0 }),
    );
    const { url, adminUrl } = await servingUrls(output, 40_000);
    await waitUntil(async () => (await fetch(`${adminUrl}/readyz`)).status === 200, 20_000);

    const halfSent = await rawClient(url);
    halfSent.socket.write("GET /v1/regions/eu/users/u-1 HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    const silent = await rawClient(url);
    // Connected after the two above: once its request reached the worker, the
    // gateway has accepted their connections too (accepted in order).
    const inFlight = await rawClient(url);
    inFlight.socket.write(get("/v1/regions/eu/users/u-42"));
    await requestArrived;

    const exited = once(gateway, "exit");
    gateway.kill("SIGTERM");
    await waitUntil(() => halfSent.state.closed && silent.state.closed, 10_000).catch(() => {
      throw new Error(`idle connections still open after SIGTERM; output:\n${output.text}`);
    });
    t.pass("the half-sent request's and the silent client's connections were closed");
    t.equal(halfSent.state.received, "", "closed without an answer: there was no request");
    t.notOk(inFlight.state.closed, "the request in flight is still being served");

    release();
    await waitUntil(() => inFlight.state.closed, 10_000);
    t.match(inFlight.state.received, /^HTTP\/1\.1 200 /, "the request in flight got its answer");
    t.match(inFlight.state.received, /connection: close/i);
    t.match(inFlight.state.received, /"id":"u-42"/);
    const [code] = await exited;
    t.equal(code, 0, `exit 0 after the drain; output:\n${output.text}`);
    t.match(output.text, /drained, bye/);
  },
);

t.test(
  "a drain cuts a request whose body never arrives once the drain grace has passed",
  async (t) => {
    let log = "";
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        log += chunk.toString();
        done();
      },
    });
    const logger = { level: "warn", stream };
    // Grace: the 500 ms request timeout plus twice the 300 ms route deadline.
    const stack = await startStack(t, writeRoutes(usersCreateRoute({ timeout: "300ms" })), {
      listener: { requestTimeoutMs: 500 },
      logger,
    });
    const upload = await rawClient(stack.gateway.url);
    upload.socket.write(
      "POST /v1/regions/eu/users HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
        "Content-Type: application/json\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n",
    );
    // Node answers 100 Continue once the request is in progress (its headers read).
    await waitUntil(() => upload.state.received.includes("100 Continue"), 10_000);
    upload.socket.write('{"user":');

    const closed = stack.gateway.close().then(() => "drained");
    const bound = new Promise((resolve) => setTimeout(() => resolve("still draining"), 15_000));
    t.equal(await Promise.race([closed, bound]), "drained", "the drain ended");
    await waitUntil(() => upload.state.closed, 5_000);
    t.notMatch(upload.state.received, /HTTP\/1\.1 [2-5]\d\d /, "the cut request got no answer");
    t.match(log, /drain: 1 connection\(s\) cut with requests unfinished/, "the cut is logged");
  },
);

t.test("over HTTPS, a drain closes idle and half-sent TLS connections at once", async (t) => {
  const certs = makeCerts(t.testdir());
  // A grace far beyond the bounded wait below: only closing at once can pass.
  const stack = await startStack(t, writeRoutes(usersGetRoute()), {
    listener: {
      https: { cert: readFileSync(certs.server.cert), key: readFileSync(certs.server.key) },
      requestTimeoutMs: 60_000,
    },
  });
  const port = Number(new URL(stack.gateway.url).port);
  const clients = await Promise.all(
    ["", "GET /v1/regions/eu/users/u-1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"].map(async (sent) => {
      const socket = tlsConnect({ host: "127.0.0.1", port, ca: readFileSync(certs.ca.cert) });
      t.teardown(() => socket.destroy());
      socket.on("error", () => {});
      const state = { closed: false };
      socket.on("close", () => (state.closed = true));
      await once(socket, "secureConnect");
      if (sent !== "") socket.write(sent);
      return state;
    }),
  );
  const closed = stack.gateway.close().then(() => "drained");
  const bound = new Promise((resolve) => setTimeout(() => resolve("still draining"), 15_000));
  t.equal(await Promise.race([closed, bound]), "drained", "the drain ended");
  await waitUntil(() => clients.every((client) => client.closed), 5_000);
  t.pass("both TLS connections were closed");
});

t.test("over HTTPS, a drain closes at once a connection still in its TLS handshake", async (t) => {
  const certs = makeCerts(t.testdir());
  const stack = await startStack(t, writeRoutes(usersGetRoute()), {
    listener: {
      https: { cert: readFileSync(certs.server.cert), key: readFileSync(certs.server.key) },
      requestTimeoutMs: 60_000,
    },
  });
  // Plain TCP that never sends its ClientHello: a balancer's pre-opened connection.
  const socket = tcpConnect(Number(new URL(stack.gateway.url).port), "127.0.0.1");
  t.teardown(() => socket.destroy());
  socket.on("error", () => {});
  const state = { closed: false };
  socket.on("close", () => (state.closed = true));
  await once(socket, "connect");
  const closed = stack.gateway.close().then(() => "drained");
  const bound = new Promise((resolve) => setTimeout(() => resolve("still draining"), 15_000));
  t.equal(await Promise.race([closed, bound]), "drained", "the drain ended");
  await waitUntil(() => state.closed, 5_000);
  t.pass("the handshaking connection was closed");
});
