/**
 * A forward given the client's response (`client`) ends when the client goes
 * away: in flight it is cancelled, still queued for a pooled connection it is
 * never sent. The "gateway" here is a plain node:http server, so the client
 * side is a real ServerResponse whose connection a real socket closes.
 */
import { once } from "node:events";
import http, { type ServerResponse } from "node:http";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import t, { type Test } from "tap";
import type { LegacyAnswer } from "../../../src/backends/legacy/forward.js";
import { LegacyUpstreams } from "../../../src/backends/legacy/upstreams.js";
import { TurnoutError } from "../../../src/errors.js";
import { listenOnLoopback, PLAIN_GET } from "../../helpers/legacy-server.js";

/** Polls `done` every 10 ms for at most `ms`; a bounded wait, not a timing assertion. */
async function until(done: () => boolean, ms = 3000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(10)) if (done()) return true;
  return done();
}

type Outcome = LegacyAnswer<Buffer> | TurnoutError;

/**
 * An upstream that holds `/held` until released and answers the rest at
 * once, and in front of it a server whose every request is forwarded with its
 * response as the `client`.
 */
async function setUp(t: Test) {
  const seen: string[] = [];
  const held: ServerResponse[] = [];
  const upstreamClosed: string[] = [];
  const upstream = http.createServer((req, res) => {
    seen.push(req.url ?? "");
    req.socket.once("close", () => upstreamClosed.push(req.url ?? ""));
    if (req.url === "/held") held.push(res);
    else res.end("{}");
  });
  const base = await listenOnLoopback(t, upstream);
  const route = { name: "things", legacy: base, timeoutMs: 10_000 };
  const upstreams = new LegacyUpstreams([route], { connections: 1 });
  t.teardown(() => upstreams.close());
  const outcomes = new Map<string, Promise<Outcome>>();
  const responses = new Map<string, ServerResponse>();
  const front = http.createServer((req, res) => {
    const request = { ...PLAIN_GET, url: req.url ?? "/" };
    responses.set(request.url, res);
    const outcome = upstreams.forward(route, request, {
      mode: "buffer",
      maxBodyBytes: 64,
      client: res,
    });
    outcomes.set(
      request.url,
      outcome.catch((error: TurnoutError) => error),
    );
  });
  const frontUrl = new URL(await listenOnLoopback(t, front));
  /** Sends GET `path` on a connection of its own; the returned function closes it. */
  const connect = async (path: string) => {
    const socket = net.connect(Number(frontUrl.port), "127.0.0.1");
    socket.on("error", () => {});
    await once(socket, "connect");
    socket.write(`GET ${path} HTTP/1.1\r\nHost: front\r\n\r\n`);
    t.ok(await until(() => outcomes.has(path)), `${path} reached the forward`);
    return () => socket.destroy();
  };
  return { seen, held, upstreamClosed, outcomes, responses, connect };
}

t.test(
  "a client that leaves cancels its forward in flight: 499, the upstream let go",
  async (t) => {
    const { seen, upstreamClosed, outcomes, connect } = await setUp(t);
    const leave = await connect("/held");
    t.ok(await until(() => seen.length === 1), "the upstream got the request");
    leave();
    const outcome = await outcomes.get("/held");
    t.ok(outcome instanceof TurnoutError, "the forward failed");
    t.equal((outcome as TurnoutError).status, 499, "client closed request");
    t.equal((outcome as TurnoutError).code, "TURNOUT_ERR_UPSTREAM_FAILED");
    t.ok(await until(() => upstreamClosed.includes("/held")), "the upstream connection was let go");
  },
);

t.test("a client that leaves while its forward is queued: the request is never sent", async (t) => {
  const { seen, held, outcomes, responses, connect } = await setUp(t);
  await connect("/held"); // takes the pool's one connection until released
  t.ok(await until(() => held.length === 1));
  const leave = await connect("/queued");
  leave();
  t.ok(await until(() => responses.get("/queued")?.destroyed === true), "the front saw it leave");
  held[0]?.end("{}"); // frees the connection the queued request waited for
  const queued = await outcomes.get("/queued");
  t.ok(queued instanceof TurnoutError, "the queued forward failed");
  t.equal((queued as TurnoutError).status, 499);
  const held0 = await outcomes.get("/held");
  t.notOk(held0 instanceof TurnoutError, "the other client still got its answer");
  t.same(seen, ["/held"], "the upstream never saw the queued request");
});
