/**
 * A legacy answer that fails or is abandoned half-way, through the whole
 * gateway: a body breaking off mid-stream cuts the client's connection,
 * shadowed or not; one failing before its first byte is a coded problem
 * without the upstream's headers; a client that leaves ends the legacy
 * exchange. The upstream is a raw socket server, to misbehave at will.
 */
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import t from "tap";
import { listenOnLoopback } from "../helpers/legacy-server.js";
import { ordersGetRoute, usersGetRoute, usersLegacyRoute } from "../helpers/route-yaml.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

const CHUNKED =
  "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n";
const PRIVATE = "Set-Cookie: session=abc; HttpOnly\r\nCache-Control: public, max-age=3600\r\n";

/** What the upstream does, by the last path segment of the request. */
const BEHAVIOURS: Record<string, (socket: net.Socket) => void> = {
  cut: (socket) => {
    socket.write(`${CHUNKED}\r\n5\r\n[1,2,\r\n`);
    setTimeout(() => socket.destroy(), 50);
  },
  stall: (socket) => socket.write(`${CHUNKED}\r\n5\r\n[1,2,\r\n`),
  "stall-early": (socket) => socket.write(`${CHUNKED}${PRIVATE}\r\n`),
  "reset-early": (socket) => {
    socket.write(`${CHUNKED}${PRIVATE}\r\n`);
    setTimeout(() => socket.destroy(), 50);
  },
  endless: (socket) => {
    socket.write(`${CHUNKED}\r\n`);
    const timer = setInterval(() => socket.write("6\r\ndata:x\r\n"), 20);
    socket.once("close", () => clearInterval(timer));
  },
  hold: () => {},
};

/** Paths whose upstream connection has closed (the last request on each). */
const closedPaths: string[] = [];
const seenPaths: string[] = [];
const upstream = net.createServer((socket) => {
  socket.on("error", () => {});
  let current = "";
  socket.once("close", () => closedPaths.push(current));
  socket.on("data", (chunk: Buffer) => {
    // GETs only: a request is its head.
    for (const head of chunk.toString("latin1").split("\r\n\r\n").slice(0, -1)) {
      current = head.split(" ")[1] ?? "";
      seenPaths.push(current);
      BEHAVIOURS[current.split("/").at(-1) ?? ""]?.(socket);
    }
  });
});
const upstreamUrl = await listenOnLoopback(t, upstream);

const ROUTES =
  usersGetRoute({ legacy: "users", cutover: "{ nats: 0, shadow: 100 }", timeout: "300ms" }) +
  usersLegacyRoute({ timeout: "300ms" }) +
  ordersGetRoute({ legacy: "users", cutover: "{ nats: 0, shadow: 0 }", timeout: "10s" });
const stack = await startStack(t, writeRoutes(ROUTES, `legacy:\n  users: ${upstreamUrl}\n`));
const port = Number(new URL(stack.gateway.url).port);

interface RawReply {
  readonly text: string;
  /** Whether the gateway closed the connection within the wait. */
  readonly closed: boolean;
}

/** GETs `path` on a new connection; resolves when the gateway closes it, or after `ms`. */
function rawGet(path: string, ms = 5000): Promise<RawReply> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1", () =>
      socket.write(`GET ${path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`),
    );
    const chunks: Buffer[] = [];
    const done = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString("latin1"), closed });
    };
    const timer = setTimeout(() => done(false), ms);
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", () => {});
    socket.once("close", () => done(true));
  });
}

/** Polls `done` every 10 ms for at most `ms`: a bounded wait, not a timing assertion. */
async function until(done: () => boolean, ms = 3000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(10)) if (done()) return true;
  return done();
}

t.test(
  "on a shadowed route, a legacy body that breaks off or stalls mid-stream cuts the client's connection",
  async (t) => {
    for (const id of ["cut", "stall"]) {
      const reply = await rawGet(`/v1/regions/eu/users/${id}`);
      t.match(reply.text, /^HTTP\/1\.1 200 /, `${id}: the head had gone out`);
      t.equal(reply.closed, true, `${id}: the gateway closed the connection`);
      t.notMatch(reply.text, /\r\n0\r\n\r\n$/, `${id}: without the final chunk, so the cut shows`);
    }
  },
);

t.test("on a shadowed route, a client leaving mid-body closes the legacy stream", async (t) => {
  const path = "/v1/regions/eu/users/endless";
  const socket = net.connect(port, "127.0.0.1", () =>
    socket.write(`GET ${path} HTTP/1.1\r\nHost: gw\r\n\r\n`),
  );
  socket.on("error", () => {});
  await new Promise((resolve) => socket.once("data", resolve));
  socket.destroy();
  t.ok(await until(() => closedPaths.includes(path)), "the upstream connection was closed");
});

t.test(
  "a streamed legacy body failing before its first byte is a coded problem without the upstream's headers",
  async (t) => {
    const cases = [
      ["stall-early", 504, "TURNOUT_ERR_UPSTREAM_TIMEOUT"],
      ["reset-early", 502, "TURNOUT_ERR_UPSTREAM_RESET"],
    ] as const;
    for (const [id, status, code] of cases) {
      const reply = await rawGet(`/v1/old/eu/users/${id}`);
      const [head = "", body = ""] = reply.text.split("\r\n\r\n");
      t.match(head, new RegExp(`^HTTP/1\\.1 ${status} `), id);
      t.match(head, /\r\ncontent-type: application\/problem\+json/i, `${id}: problem+json`);
      t.equal(JSON.parse(body).code, code, id);
      t.notMatch(head, /set-cookie|cache-control/i, `${id}: none of the upstream's headers`);
    }
    const metrics = await (await fetch(`${stack.gateway.adminUrl}/metrics`)).text();
    for (const status of [504, 502]) {
      const sample = `turnout_requests_total{route="users.legacy",backend="legacy",code="${status}"} 1`;
      t.ok(metrics.includes(sample), `counted as legacy's ${status}`);
    }
  },
);

t.test("a client that leaves before the legacy answer cancels the legacy request", async (t) => {
  const path = "/v1/orders/hold";
  const socket = net.connect(port, "127.0.0.1", () =>
    socket.write(`GET ${path} HTTP/1.1\r\nHost: gw\r\n\r\n`),
  );
  socket.on("error", () => {});
  t.ok(await until(() => seenPaths.includes(path)), "legacy got the request");
  socket.destroy();
  // The route's timeout is 10 s: only the cancel closes the connection this soon.
  t.ok(await until(() => closedPaths.includes(path)), "the legacy connection was let go");
});

t.test(
  "a streamed answer cut after its head is counted once: 502 when the upstream broke off, 499 when the client left",
  async (t) => {
    const metrics = async () => (await fetch(`${stack.gateway.adminUrl}/metrics`)).text();
    const counted = (text: string, code: number) => {
      const sample = `turnout_requests_total{route="orders.get",backend="legacy",code="${code}"} `;
      const line = text.split("\n").find((l) => l.startsWith(sample));
      return line === undefined ? 0 : Number(line.slice(sample.length));
    };
    /** Polls until `code` was counted `n` times more than in `before`; false after 3 s. */
    const countedOnce = async (before: string, code: number) => {
      for (const end = Date.now() + 3000; Date.now() < end; await sleep(20)) {
        if (counted(await metrics(), code) === counted(before, code) + 1) return true;
      }
      return false;
    };
    const start = await metrics();

    const reply = await rawGet("/v1/orders/cut");
    t.match(reply.text, /^HTTP\/1\.1 200 /, "the head had gone out");
    t.ok(await countedOnce(start, 502), "the upstream breaking off counted as 502");

    const path = "/v1/orders/endless";
    const socket = net.connect(port, "127.0.0.1", () =>
      socket.write(`GET ${path} HTTP/1.1\r\nHost: gw\r\n\r\n`),
    );
    socket.on("error", () => {});
    await new Promise((resolve) => socket.once("data", resolve));
    socket.destroy();
    t.ok(await countedOnce(start, 499), "the client leaving counted as 499");
    const end = await metrics();
    t.equal(counted(end, 200), counted(start, 200), "neither counted as a 200 as well");
    t.equal(counted(end, 502), counted(start, 502) + 1, "each counted once");
  },
);
