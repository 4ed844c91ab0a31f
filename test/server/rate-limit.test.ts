import { setTimeout as sleep } from "node:timers/promises";
import t from "tap";
import { usersCreateRoute, usersGetRoute, usersListRoute } from "../helpers/route-yaml.js";
import { type SeenRequest, startUsersWorker } from "../helpers/routes-and-workers.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

const ROUTES =
  usersGetRoute({
    error: "users.v1.Error",
    rateLimit: '{ max: 3, per: 1s, key: "header:X-Api-Key" }',
  }) +
  usersListRoute({ rateLimit: "{ max: 2, per: 1s }" }) +
  usersCreateRoute();

const seen: SeenRequest[] = [];
const stack = await startStack(t, writeRoutes(ROUTES));
const workers = startUsersWorker(stack.nc, stack.root, seen);
await stack.nc.flush();
t.teardown(async () => {
  for (const worker of workers) await worker.stop();
});

const url = (path: string) => `${stack.gateway.url}${path}`;
const getUser = (key?: string) =>
  fetch(url("/v1/regions/eu/users/u-1"), {
    headers: key === undefined ? {} : { "x-api-key": key },
  });

async function metric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${stack.gateway.adminUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1));
}

t.test("the (max+1)th request of a key in the window is 429 problem+json", async (t) => {
  for (let i = 0; i < 3; i++) {
    const res = await getUser("key-a");
    t.equal(res.status, 200, `request ${i + 1} of 3 is served`);
    t.equal(res.headers.get("x-ratelimit-limit"), null, "a served answer gets no headers of ours");
    t.equal(res.headers.get("x-ratelimit-remaining"), null);
    await res.arrayBuffer();
  }
  const seenBefore = seen.length;
  const res = await getUser("key-a");
  t.equal(res.status, 429);
  t.match(res.headers.get("content-type"), /^application\/problem\+json/);
  const retryAfter = Number(res.headers.get("retry-after"));
  t.equal(retryAfter, 1, "Retry-After: the rest of the 1s window, rounded up to seconds");
  t.equal(res.headers.get("x-ratelimit-limit"), "3", "the 429 names the limit");
  t.ok(res.headers.get("x-request-id"), "the request id comes back as on every problem");
  const problem = (await res.json()) as Record<string, unknown>;
  t.match(problem, {
    type: "urn:turnout:error:TURNOUT_ERR_RATE_LIMITED",
    title: "Too many requests",
    status: 429,
    code: "TURNOUT_ERR_RATE_LIMITED",
    route: "users.get",
    detail:
      /allows 3 request\(s\) per second for each value of x-api-key on each gateway process; retry in/,
  });
  t.match(problem.detail, new RegExp(`retry in ${retryAfter} s$`), "the wait Retry-After gives");
  t.equal(seen.length, seenBefore, "the refused request never reached the worker");

  const other = await getUser("key-b");
  t.equal(other.status, 200, "another header value has its own budget");
  await other.arrayBuffer();
});

t.test("the 429s are counted by route and as answered by the gateway", async (t) => {
  const limitedBefore = await metric("turnout_rate_limited_total", 'route="users.get"');
  const requestsBefore = await metric(
    "turnout_requests_total",
    'route="users.get",backend="gateway",code="429"',
  );
  for (let i = 0; i < 2; i++) {
    const res = await getUser("key-a");
    t.equal(res.status, 429, "key-a is still over its limit");
    await res.arrayBuffer();
  }
  t.equal(
    await metric("turnout_rate_limited_total", 'route="users.get"'),
    limitedBefore + 2,
    "turnout_rate_limited_total{route}",
  );
  t.equal(
    await metric("turnout_requests_total", 'route="users.get",backend="gateway",code="429"'),
    requestsBefore + 2,
    'turnout_requests_total{backend="gateway",code="429"}',
  );
  t.ok(limitedBefore >= 1, "the earlier 429 was counted too");
});

t.test("after the window passes, requests flow again", async (t) => {
  const res = await getUser("key-a");
  t.equal(res.status, 429);
  const wait = Number(res.headers.get("retry-after"));
  await res.arrayBuffer();
  await sleep(wait * 1000 + 100);
  const again = await getUser("key-a");
  t.equal(again.status, 200, "a fresh window");
  await again.arrayBuffer();
});

t.test("key ip: limited by client address; routes without rateLimit are not", async (t) => {
  const list = () => fetch(url("/v1/regions/eu/users"));
  const statuses: number[] = [];
  for (let i = 0; i < 3; i++) {
    const res = await list();
    statuses.push(res.status);
    await res.arrayBuffer();
  }
  t.same(statuses, [200, 200, 429]);

  const creates: number[] = [];
  for (let i = 0; i < 10; i++) {
    const res = await fetch(url("/v1/regions/eu/users"), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ display_name: "Ada" }),
    });
    creates.push(res.status);
    await res.arrayBuffer();
  }
  t.same(creates, Array(10).fill(201), "users.create has no limit");
});

t.test("a header-keyed route without the header falls back to the address", async (t) => {
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) {
    const res = await getUser();
    statuses.push(res.status);
    await res.arrayBuffer();
  }
  t.same(statuses, [200, 200, 200, 429]);
  const keyed = await getUser("key-c");
  t.equal(keyed.status, 200, "a request with the header is not charged to the address");
  await keyed.arrayBuffer();
});

t.test("HEAD shares the GET route's limit", async (t) => {
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) {
    const res = await fetch(url("/v1/regions/eu/users/u-1"), {
      method: i % 2 === 0 ? "GET" : "HEAD",
      headers: { "x-api-key": "key-head" },
    });
    statuses.push(res.status);
    await res.arrayBuffer();
  }
  t.same(statuses, [200, 200, 200, 429]);
});

t.test(
  "key ip behind a trusted proxy: each X-Forwarded-For client has its own budget; untrusted, they share one",
  async (t) => {
    const behindProxy = await startStack(t, writeRoutes(ROUTES), { trustProxy: ["127.0.0.1"] });
    const proxyWorkers = startUsersWorker(behindProxy.nc, behindProxy.root, []);
    await behindProxy.nc.flush();
    t.teardown(async () => {
      for (const worker of proxyWorkers) await worker.stop();
    });
    const listFor = async (base: string, client: string) => {
      const res = await fetch(`${base}/v1/regions/eu/users`, {
        headers: { "x-forwarded-for": client },
      });
      await res.arrayBuffer();
      return res.status;
    };
    const trusted = behindProxy.gateway.url;
    t.same(
      [
        await listFor(trusted, "203.0.113.1"),
        await listFor(trusted, "203.0.113.1"),
        await listFor(trusted, "203.0.113.1"),
        await listFor(trusted, "203.0.113.2"),
      ],
      [200, 200, 429, 200],
      "the second client is not limited by the first",
    );
    t.same(
      [
        await listFor(trusted, "2001:db8:1:2::1"),
        await listFor(trusted, "2001:db8:1:2::2"),
        await listFor(trusted, "2001:db8:1:2:ffff::3"),
        await listFor(trusted, "2001:db8:1:3::1"),
      ],
      [200, 200, 429, 200],
      "IPv6 clients are counted by /64: one budget for 2001:db8:1:2::/64, another for the next /64",
    );
    t.same(
      [
        await listFor(trusted, "203.0.113.9"),
        await listFor(trusted, "::ffff:203.0.113.9"),
        await listFor(trusted, "203.0.113.9"),
      ],
      [200, 200, 429],
      "an IPv4-mapped address is its IPv4 client",
    );
    await sleep(1100); // a fresh window on the untrusting gateway
    const untrusted = stack.gateway.url;
    t.same(
      [
        await listFor(untrusted, "198.51.100.1"),
        await listFor(untrusted, "198.51.100.2"),
        await listFor(untrusted, "198.51.100.3"),
      ],
      [200, 200, 429],
      "without --trust-proxy the header is ignored: one budget for the socket's address",
    );
  },
);
