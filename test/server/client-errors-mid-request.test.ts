/**
 * Errors Node reports on a connection whose request Fastify already has (its
 * headers arrived, its body has not): the request is answered and recorded
 * once, on its route. A body that stops arriving is a 408 problem+json, one
 * that does not parse a 400; a client that breaks off is recorded as gone
 * (499), not also as a refused request of its own.
 */
import { once } from "node:events";
import { type Socket, connect as tcpConnect } from "node:net";
import t from "tap";
import { infoLogLines } from "../helpers/log-lines.js";
import { usersCreateRoute } from "../helpers/route-yaml.js";
import { waitUntil } from "../helpers/serve-process.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

const { logger, lines } = infoLogLines();
const stack = await startStack(t, writeRoutes(usersCreateRoute()), {
  logger,
  listener: { requestTimeoutMs: 1000 },
});

const HEAD =
  "POST /v1/regions/eu/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
  "Content-Length: 40\r\n\r\n";

/** Every turnout_requests_total series and its value. */
async function requestCounts(): Promise<Map<string, number>> {
  const text = await (await fetch(`${stack.gateway.adminUrl}/metrics`)).text();
  const counts = new Map<string, number>();
  for (const [, series = "", value] of text.matchAll(
    /^turnout_requests_total(\{[^}]*\}) (\d+)$/gm,
  )) {
    counts.set(series, Number(value));
  }
  return counts;
}

/** The series whose count changed from `before` to `after`, with the change. */
function changed(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const diff: Record<string, number> = {};
  for (const [series, value] of after) {
    const delta = value - (before.get(series) ?? 0);
    if (delta !== 0) diff[series] = delta;
  }
  return diff;
}

/** Writes `bytes` on a raw connection to the gateway; `answer` is what came back so far. */
async function sendRaw(bytes: string): Promise<{ socket: Socket; answer: () => string }> {
  const socket = tcpConnect(Number(new URL(stack.gateway.url).port), "127.0.0.1");
  t.teardown(() => socket.destroy());
  let answer = "";
  socket.on("data", (chunk: Buffer) => (answer += chunk.toString()));
  socket.on("error", () => {});
  await once(socket, "connect");
  socket.write(bytes);
  return { socket, answer: () => answer };
}

const sendPartly = () => sendRaw(`${HEAD}{"user":{"display`);

const requestLines = () =>
  lines
    .map((line) => JSON.parse(line) as { msg: string; status: number; route: string })
    .filter((line) => line.msg === "request");

t.test(
  "a body that stops arriving is answered 408 problem+json on its route, counted and logged once",
  async (t) => {
    const before = await requestCounts();
    const logged = requestLines().length;
    const { socket, answer } = await sendPartly();
    // The listener's 1 s request timeout, not Node's 60 s headers timeout, must end it.
    const closed = await Promise.race([
      once(socket, "close").then(() => true),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), 15_000)),
    ]);
    t.ok(closed, "answered and closed well within 15 s");
    const [head = "", body = ""] = answer().split("\r\n\r\n");
    t.match(head, /^HTTP\/1\.1 408 /, "a 408");
    t.match(head, /\r\ncontent-type: application\/problem\+json/i);
    t.match(head, /\r\nconnection: close\r\n/i, "saying the connection closes");
    const requestId = /\r\nx-request-id: (\S+)\r\n/i.exec(head)?.[1];
    t.match(JSON.parse(body), { status: 408, code: "TURNOUT_ERR_REQUEST_TIMEOUT", requestId });
    await waitUntil(() => requestLines().length > logged, 5000);
    t.same(
      changed(before, await requestCounts()),
      { '{route="users.create",backend="gateway",code="408"}': 1 },
      "counted once, on its route",
    );
    t.match(requestLines().slice(logged), [{ route: "users.create", status: 408 }]);
    t.equal(requestLines().length, logged + 1, "one log line");
  },
);

t.test(
  "a client that breaks off in the middle of its body is counted once, as gone (499) on its route",
  async (t) => {
    const before = await requestCounts();
    const logged = requestLines().length;
    const { socket } = await sendPartly();
    await new Promise((resolve) => setTimeout(resolve, 200));
    socket.end();
    await waitUntil(() => requestLines().length > logged, 5000);
    // Anything counted twice would be counted by now.
    await new Promise((resolve) => setTimeout(resolve, 300));
    t.same(
      changed(before, await requestCounts()),
      { '{route="users.create",backend="gateway",code="499"}': 1 },
      "no refused request of its own beside it",
    );
    t.equal(requestLines().length, logged + 1, "one log line");
  },
);

t.test(
  "a body that does not parse (a bad chunk size) is answered 400 problem+json on its route, not cut as gone",
  async (t) => {
    const before = await requestCounts();
    const { socket, answer } = await sendRaw(
      "POST /v1/regions/eu/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
        "Transfer-Encoding: chunked\r\n\r\nzz\r\n",
    );
    await Promise.race([once(socket, "close"), new Promise((r) => setTimeout(r, 5000))]);
    const [head = "", body = ""] = answer().split("\r\n\r\n");
    t.match(head, /^HTTP\/1\.1 400 /, "a 400");
    t.match(head, /\r\nconnection: close\r\n/i);
    t.match(JSON.parse(body), { code: "TURNOUT_ERR_MALFORMED_REQUEST", route: "users.create" });
    await waitUntil(
      async () => Object.keys(changed(before, await requestCounts())).length > 0,
      5000,
    );
    t.same(changed(before, await requestCounts()), {
      '{route="users.create",backend="gateway",code="400"}': 1,
    });
  },
);
