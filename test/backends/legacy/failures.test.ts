import { once } from "node:events";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import t, { type Test } from "tap";
import { neverReachedUpstream, upstreamFailure } from "../../../src/backends/legacy/failures.js";
import { RELAY_WHOLE_MAX_BYTES } from "../../../src/backends/legacy/forward.js";
import { LegacyUpstreams } from "../../../src/backends/legacy/upstreams.js";
import { TurnoutError } from "../../../src/errors.js";
import { forwardFailure, listenOnLoopback, PLAIN_GET } from "../../helpers/legacy-server.js";

function legacy(t: Test, base: string, timeoutMs = 2000) {
  const route = { name: "orders", legacy: base, timeoutMs };
  const upstreams = new LegacyUpstreams([route]);
  t.teardown(() => upstreams.close());
  return { route, upstreams };
}

const BUFFER = { mode: "buffer", maxBodyBytes: 1 << 20 } as const;

async function closedPort(): Promise<string> {
  const server = net.createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

t.test("a refused connection is a 503 UPSTREAM_REFUSED, safe to retry", async (t) => {
  const { route, upstreams } = legacy(t, await closedPort());
  const error = await forwardFailure(upstreams.forward(route, PLAIN_GET, BUFFER));
  t.equal(error.code, "TURNOUT_ERR_UPSTREAM_REFUSED");
  t.equal(error.status, 503);
  t.equal((error.cause as { code?: string }).code, "ECONNREFUSED", "the cause is kept");
  t.equal(neverReachedUpstream(error), true);
});

t.test("a connection closed before the answer is a 502 UPSTREAM_RESET", async (t) => {
  const base = await listenOnLoopback(
    t,
    http.createServer((req) => req.socket.destroy()),
  );
  const { route, upstreams } = legacy(t, base);
  const error = await forwardFailure(upstreams.forward(route, PLAIN_GET, { mode: "relay" }));
  t.equal(error.code, "TURNOUT_ERR_UPSTREAM_RESET");
  t.equal(error.status, 502);
  t.equal(neverReachedUpstream(error), false, "the upstream may have acted on it");
});

/** Sends the head and a few bytes of a body declared `declared` bytes long, then resets. */
function resettingUpstream(declared: number) {
  return http.createServer((req, res) => {
    res.writeHead(200, { "content-length": String(declared) });
    res.write("partial");
    setTimeout(() => req.socket.destroy(), 20);
  });
}

t.test("a reset mid-body of a small body is a 502 UPSTREAM_RESET before any answer", async (t) => {
  const { route, upstreams } = legacy(t, await listenOnLoopback(t, resettingUpstream(1000)));
  const buffered = await forwardFailure(upstreams.forward(route, PLAIN_GET, BUFFER));
  t.equal(buffered.code, "TURNOUT_ERR_UPSTREAM_RESET");
  t.equal(buffered.status, 502);
  // Relayed, a body declared up to RELAY_WHOLE_MAX_BYTES is read whole first: the
  // client gets a clean 502 instead of a cut answer.
  const relayed = await forwardFailure(upstreams.forward(route, PLAIN_GET, { mode: "relay" }));
  t.equal(relayed.code, "TURNOUT_ERR_UPSTREAM_RESET");
});

t.test("a reset mid-body of a large streamed body fails the stream, named alike", async (t) => {
  const { route, upstreams } = legacy(
    t,
    await listenOnLoopback(t, resettingUpstream(RELAY_WHOLE_MAX_BYTES + 1)),
  );
  // Streamed, the head is already out: the body fails, and the same function names it.
  const answer = await upstreams.forward(route, PLAIN_GET, { mode: "relay" });
  t.equal(answer.status, 200);
  const [streamError] = await once(streamOf(answer.body).resume(), "error");
  t.equal(upstreamFailure(streamError).code, "TURNOUT_ERR_UPSTREAM_RESET");
});

t.test("an upstream that never answers is a 504 after the route timeout", async (t) => {
  const base = await listenOnLoopback(
    t,
    http.createServer(() => {}),
  );
  const { route, upstreams } = legacy(t, base, 200);
  const started = performance.now();
  const error = await forwardFailure(upstreams.forward(route, PLAIN_GET, { mode: "relay" }));
  const elapsed = performance.now() - started;
  t.equal(error.code, "TURNOUT_ERR_UPSTREAM_TIMEOUT");
  t.equal(error.status, 504);
  t.ok(elapsed >= 190 && elapsed < 1000, `failed after ${Math.round(elapsed)} ms`);
});

t.test(
  "the route timeout covers the wait for a pooled connection: a request queued behind slow answers fails at its deadline, unsent",
  async (t) => {
    const seen: string[] = [];
    const server = http.createServer((req) => seen.push(req.url ?? ""));
    const base = await listenOnLoopback(t, server);
    const slow = { name: "reports", legacy: base, timeoutMs: 1200 };
    const fast = { name: "users", legacy: base, timeoutMs: 200 };
    const upstreams = new LegacyUpstreams([slow, fast], { connections: 1 });
    t.teardown(() => upstreams.close());
    const held = upstreams.forward(slow, { ...PLAIN_GET, url: "/slow" }, BUFFER);
    held.catch(() => {});
    const started = performance.now();
    const error = await forwardFailure(
      upstreams.forward(fast, { ...PLAIN_GET, url: "/fast" }, BUFFER),
    );
    const elapsed = performance.now() - started;
    t.equal(error.code, "TURNOUT_ERR_UPSTREAM_TIMEOUT");
    t.ok(
      elapsed >= 190 && elapsed < 1000,
      `failed after ${Math.round(elapsed)} ms, not after the slow request's 1.2 s`,
    );
    t.strictSame(seen, ["/slow"], "the queued request never reached the upstream");
  },
);

t.test(
  "a streamed body that stalls longer than the route timeout fails as a timeout",
  async (t) => {
    const server = http.createServer((_req, res) => {
      res.writeHead(200);
      res.write("first");
    });
    const { route, upstreams } = legacy(t, await listenOnLoopback(t, server), 200);
    const answer = await upstreams.forward(route, PLAIN_GET, { mode: "relay" });
    const started = performance.now();
    const [error] = await once(streamOf(answer.body).resume(), "error");
    t.equal(upstreamFailure(error).code, "TURNOUT_ERR_UPSTREAM_TIMEOUT");
    const waited = performance.now() - started;
    t.ok(
      waited >= 150 && waited < 1500,
      `after the idle time, not at once: ${Math.round(waited)} ms`,
    );
  },
);

t.test("buffer mode's deadline covers the whole body, even one that trickles", async (t) => {
  const server = http.createServer(async (_req, res) => {
    res.writeHead(200);
    // Each byte comes well within the idle limit; the whole never ends in time.
    for (let i = 0; i < 40 && !res.destroyed; i++) {
      res.write("x");
      await sleep(50);
    }
    res.end();
  });
  const { route, upstreams } = legacy(t, await listenOnLoopback(t, server), 300);
  const started = performance.now();
  const error = await forwardFailure(upstreams.forward(route, PLAIN_GET, BUFFER));
  t.equal(error.code, "TURNOUT_ERR_UPSTREAM_TIMEOUT");
  t.ok(performance.now() - started < 1000, "at the deadline, not when the body ends");
});

t.test("a status outside 200-599 and a malformed head are 502 UPSTREAM_BAD", async (t) => {
  for (const head of ["HTTP/1.1 600 Odd\r\ncontent-length: 0\r\n\r\n", "garbage\r\n\r\n"]) {
    const server = net.createServer((socket) => socket.once("data", () => socket.end(head)));
    const { route, upstreams } = legacy(t, await listenOnLoopback(t, server));
    const error = await forwardFailure(upstreams.forward(route, PLAIN_GET, BUFFER));
    t.equal(error.code, "TURNOUT_ERR_UPSTREAM_BAD", JSON.stringify(head));
    t.equal(error.status, 502);
  }
});

t.test("the caller's signal cancels the upstream request", async (t) => {
  let upstreamSawClose = false;
  const server = http.createServer((req) => {
    req.socket.on("close", () => {
      upstreamSawClose = true;
    });
  });
  const { route, upstreams } = legacy(t, await listenOnLoopback(t, server));
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 50);
  const error = await forwardFailure(
    upstreams.forward(route, PLAIN_GET, { mode: "relay", signal: controller.signal }),
  );
  t.equal(error.code, "TURNOUT_ERR_UPSTREAM_FAILED");
  t.equal((error.cause as Error).name, "AbortError", "the abort is the cause");
  await sleep(50);
  t.equal(upstreamSawClose, true, "the upstream connection was let go");
  const timedOut = await forwardFailure(
    upstreams.forward(route, PLAIN_GET, { mode: "relay", signal: AbortSignal.timeout(50) }),
  );
  t.equal(timedOut.code, "TURNOUT_ERR_UPSTREAM_TIMEOUT", "a caller's timeout is a timeout");
});

t.test("a route without a legacy upstream is refused as a gateway bug", async (t) => {
  const upstreams = new LegacyUpstreams([]);
  t.teardown(() => upstreams.close());
  const route = { name: "nats-only", legacy: undefined, timeoutMs: 100 };
  const error = await forwardFailure(upstreams.forward(route, PLAIN_GET, BUFFER));
  t.equal(error.code, "TURNOUT_ERR_INTERNAL");
  t.match(error.message, /nats-only/);
});

t.test("transport error codes map to one coded status each", async (t) => {
  const cases: Array<[unknown, string, number, boolean]> = [
    [Object.assign(new Error("x"), { code: "ENOTFOUND" }), "TURNOUT_ERR_UPSTREAM_DNS", 503, true],
    [Object.assign(new Error("x"), { code: "EAI_AGAIN" }), "TURNOUT_ERR_UPSTREAM_DNS", 503, true],
    [
      new AggregateError([Object.assign(new Error("x"), { code: "ECONNREFUSED" })]),
      "TURNOUT_ERR_UPSTREAM_REFUSED",
      503,
      true,
    ],
    [
      Object.assign(new Error("x"), { code: "UND_ERR_CONNECT_TIMEOUT" }),
      "TURNOUT_ERR_UPSTREAM_REFUSED",
      503,
      true,
    ],
    [
      Object.assign(new Error("x"), { code: "ECONNRESET" }),
      "TURNOUT_ERR_UPSTREAM_RESET",
      502,
      false,
    ],
    [
      Object.assign(new Error("x"), { code: "UND_ERR_HEADERS_TIMEOUT" }),
      "TURNOUT_ERR_UPSTREAM_TIMEOUT",
      504,
      false,
    ],
    [
      Object.assign(new Error("x"), { code: "UND_ERR_BODY_TIMEOUT" }),
      "TURNOUT_ERR_UPSTREAM_TIMEOUT",
      504,
      false,
    ],
    [new Error("something else"), "TURNOUT_ERR_UPSTREAM_FAILED", 502, false],
    ["not even an Error", "TURNOUT_ERR_UPSTREAM_FAILED", 502, false],
  ];
  for (const [raw, code, status, neverReached] of cases) {
    const mapped = upstreamFailure(raw);
    t.equal(mapped.code, code, `${String(raw)} -> ${code}`);
    t.equal(mapped.status, status);
    t.equal(mapped.cause, raw, "the original is the cause");
    t.equal(neverReachedUpstream(raw), neverReached, `${code}: never reached upstream?`);
  }
  const already = new TurnoutError("TURNOUT_ERR_UPSTREAM_TOO_LARGE", "big");
  t.equal(upstreamFailure(already), already, "a TurnoutError passes unchanged");
});

/** The body of a relayed answer that must have been streamed. */
function streamOf(body: Readable | Buffer): Readable {
  if (Buffer.isBuffer(body)) throw new Error("expected a streamed body, got one read whole");
  return body;
}
