/**
 * Requests refused before any route ran (a URL the router cannot read, a path
 * param over its limit, a request Node cannot parse or that arrives too
 * slowly) are counted in /metrics and logged once, like every other answer:
 * route `_unmatched`, backend `gateway`.
 */
import { once } from "node:events";
import { connect as tcpConnect } from "node:net";
import t, { type Test } from "tap";
import { infoLogLines } from "../helpers/log-lines.js";
import { usersGetRoute } from "../helpers/route-yaml.js";
import { waitUntil } from "../helpers/serve-process.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

const { logger, lines } = infoLogLines();
const stack = await startStack(t, writeRoutes(usersGetRoute()), {
  logger,
  listener: { requestTimeoutMs: 1000 },
});

interface RequestLine {
  msg: string;
  requestId: string;
  route: string;
  backend: string;
  status: number;
}

const requestLines = (status: number) =>
  lines
    .map((line) => JSON.parse(line) as RequestLine)
    .filter((line) => line.msg === "request" && line.status === status);

async function counted(status: number, route = "_unmatched"): Promise<number> {
  const text = await (await fetch(`${stack.gateway.adminUrl}/metrics`)).text();
  const pattern = new RegExp(
    `^turnout_requests_total\\{route="${route}",backend="gateway",code="${status}"\\} (\\d+)$`,
    "m",
  );
  return Number(pattern.exec(text)?.[1] ?? 0);
}

/** Sends `bytes` on a fresh connection and returns all the gateway answered before closing. */
async function raw(bytes: string): Promise<string> {
  const socket = tcpConnect(Number(new URL(stack.gateway.url).port), "127.0.0.1");
  t.teardown(() => socket.destroy());
  let answer = "";
  socket.on("data", (chunk: Buffer) => (answer += chunk.toString()));
  socket.on("error", () => {});
  await once(socket, "connect");
  socket.write(bytes);
  await once(socket, "close");
  return answer;
}

t.test(
  "a bad percent-encoding and an over-long path param are a 400 naming route and param, counted and logged once under the route",
  async (t) => {
    const before = await counted(400, "users.get");
    const cases = [
      { path: "/v1/regions/eu/users/%zz?secret=1", why: /"id" is not valid percent-encoding/ },
      { path: `/v1/regions/eu/users/${"a".repeat(300)}`, why: /"id" is longer than 256/ },
    ];
    for (const { path, why } of cases) {
      const res = await fetch(`${stack.gateway.url}${path}`);
      t.equal(res.status, 400, path.slice(0, 40));
      t.match(res.headers.get("content-type"), /^application\/problem\+json/);
      const problem = (await res.json()) as Record<string, unknown>;
      t.match(problem, { code: "TURNOUT_ERR_BAD_PARAM", route: "users.get", field: "id" });
      t.match(problem.detail, why);
      t.notMatch(problem.detail, /secret/, "the URL is not quoted back");
      const requestId = res.headers.get("x-request-id");
      await waitUntil(() => requestLines(400).some((line) => line.requestId === requestId), 5000);
      const [line] = requestLines(400).filter((line) => line.requestId === requestId);
      t.match(line, { route: "users.get", backend: "gateway", status: 400 }, "one log line");
    }
    t.equal(
      await counted(400, "users.get"),
      before + 2,
      "turnout_requests_total counts both under the route, once each",
    );
  },
);

/** The problem+json body of a raw answer, after checking its head says so. */
function problemOf(t: Test, answer: string): Record<string, unknown> {
  const [head = "", body = ""] = answer.split("\r\n\r\n");
  t.match(head, /\r\nContent-Type: application\/problem\+json\r\n/i, "answered as problem+json");
  t.match(head, /\r\nConnection: close(\r\n|$)/i, "saying the connection closes");
  return JSON.parse(body) as Record<string, unknown>;
}

t.test("requests Node refuses before parsing them are counted and logged", async (t) => {
  const before = await counted(400);
  const bad = await raw("NOT A REQUEST\r\n\r\n");
  t.match(bad, /^HTTP\/1\.1 400 /, "a malformed request line is a 400");
  const big = await raw(
    `GET /v1/regions/eu/users/u-1 HTTP/1.1\r\nHost: x\r\nX-Big: ${"b".repeat(17 * 1024)}\r\n\r\n`,
  );
  t.match(big, /^HTTP\/1\.1 431 /, "headers over 16 KiB are a 431");
  const slow = await raw("GET /v1/regions/eu/users/u-1 HTTP/1.1\r\nHost: x\r\n");
  t.match(slow, /^HTTP\/1\.1 408 /, "a request not sent whole in time is a 408");
  t.match(slow, /X-Request-Id: [0-9a-f-]{36}\r\n/, "naming the request id of its log line");
  t.match(problemOf(t, bad), { status: 400, code: "TURNOUT_ERR_MALFORMED_REQUEST" });
  t.match(problemOf(t, big), {
    status: 431,
    code: "TURNOUT_ERR_HEADERS_TOO_LARGE",
    detail: /16384 bytes/,
  });
  t.match(problemOf(t, slow), {
    status: 408,
    code: "TURNOUT_ERR_REQUEST_TIMEOUT",
    requestId: /X-Request-Id: (\S+)\r\n/.exec(slow)?.[1],
  });

  await waitUntil(() => requestLines(431).length === 1 && requestLines(408).length === 1, 5000);
  t.equal(await counted(431), 1);
  t.equal(await counted(408), 1);
  t.equal(await counted(400), before + 1, "the malformed request counted as a 400");
  const slowId = /X-Request-Id: (\S+)\r\n/.exec(slow)?.[1];
  t.match(requestLines(408)[0], { requestId: slowId, route: "_unmatched", backend: "gateway" });
});
