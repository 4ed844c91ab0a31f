import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import Fastify from "fastify";
import t, { type Test } from "tap";
import { request } from "undici";
import type { LegacyRequest } from "../../../src/backends/legacy/forward.js";
import { LegacyUpstreams } from "../../../src/backends/legacy/upstreams.js";
import { forwardFailure } from "../../helpers/legacy-server.js";

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A real upstream on port 0 that records what it received, then answers with `answer`. */
async function upstream(t: Test, answer: (res: http.ServerResponse, seen: Seen) => void) {
  const seen: Seen[] = [];
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const one = {
      method: req.method!,
      url: req.url!,
      headers: req.headers,
      body: Buffer.concat(chunks),
    };
    seen.push(one);
    answer(res, one);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

function legacy(t: Test, base: string) {
  const route = { name: "things", legacy: base, timeoutMs: 2000 };
  const upstreams = new LegacyUpstreams([route]);
  t.teardown(() => upstreams.close());
  return { route, upstreams };
}

/** For checks of the request side only: the answer is read whole. */
const BUFFER = { mode: "buffer", maxBodyBytes: 1 << 20 } as const;

function client(overrides: Partial<LegacyRequest> = {}): LegacyRequest {
  return {
    method: "GET",
    url: "/",
    headers: { host: "shop.example" },
    body: undefined,
    remoteAddress: "198.51.100.2",
    protocol: "https",
    host: "shop.example",
    ...overrides,
  };
}

t.test("method, path, query, body and custom headers reach the upstream unchanged", async (t) => {
  const up = await upstream(t, (res) => res.end());
  const { route, upstreams } = legacy(t, up.url);
  const body = '{"name":"é","n":1}';
  await upstreams.forward(
    route,
    client({
      method: "PATCH",
      url: "/v1/things/9?a=1&a=2&b=%C3%A9&empty=",
      headers: { "content-type": "application/json", "x-custom": "v1", "content-length": "20" },
      body,
    }),
    BUFFER,
  );
  const seen = up.seen[0]!;
  t.equal(seen.method, "PATCH");
  t.equal(seen.url, "/v1/things/9?a=1&a=2&b=%C3%A9&empty=");
  t.equal(seen.body.toString(), body);
  t.equal(seen.headers["content-length"], String(Buffer.byteLength(body)), "counted in bytes");
  t.equal(seen.headers["content-type"], "application/json");
  t.equal(seen.headers["x-custom"], "v1");
  t.equal(seen.headers.host, new URL(up.url).host, "host is the upstream's");
});

t.test("a base URL with a path prefix puts the prefix before the client's path", async (t) => {
  const up = await upstream(t, (res) => res.end());
  const { route, upstreams } = legacy(t, `${up.url}/legacy/api`);
  await upstreams.forward(route, client({ url: "/v1/users/7?x=1" }), BUFFER);
  t.equal(up.seen[0]?.url, "/legacy/api/v1/users/7?x=1");
});

t.test(
  "an absolute-form target reaches the upstream as its path and query only; `*` is a 400",
  async (t) => {
    const up = await upstream(t, (res) => res.end());
    const { route, upstreams } = legacy(t, `${up.url}/legacy/api`);
    for (const url of ["http://attacker.example/v1/users/7?x=1", "HTTPS://a.example:8443"]) {
      await upstreams.forward(route, client({ url }), BUFFER);
    }
    t.same(
      up.seen.map((seen) => seen.url),
      ["/legacy/api/v1/users/7?x=1", "/legacy/api/"],
      "never the client's scheme and host",
    );
    const star = client({ method: "OPTIONS", url: "*" });
    const refused = await forwardFailure(upstreams.forward(route, star, BUFFER));
    t.match(refused, { code: "TURNOUT_ERR_BAD_PARAM", status: 400, field: "url" });
    t.equal(up.seen.length, 2, "nothing sent for it");
  },
);

t.test("status, Location and every Set-Cookie come back unchanged", async (t) => {
  const up = await upstream(t, (res) => {
    res.setHeader("set-cookie", ["a=1; Path=/", "b=2; HttpOnly"]);
    res.writeHead(201, { location: "/v1/things/10", "x-upstream": "yes" }).end("{}");
  });
  const { route, upstreams } = legacy(t, up.url);
  const answer = await upstreams.forward(route, client({ method: "POST", body: "{}" }), {
    mode: "buffer",
    maxBodyBytes: 1024,
  });
  t.equal(answer.status, 201);
  t.equal(answer.headers.location, "/v1/things/10");
  t.equal(answer.headers["x-upstream"], "yes");
  t.same(answer.headers["set-cookie"], ["a=1; Path=/", "b=2; HttpOnly"]);
  t.equal(answer.body.toString(), "{}");
});

t.test("error and empty statuses (204, 304, 404, 500) pass through as they are", async (t) => {
  const up = await upstream(t, (res, seen) => {
    const status = Number(seen.url.slice(1));
    res.writeHead(status).end(status >= 400 ? `status ${status}` : undefined);
  });
  const { route, upstreams } = legacy(t, up.url);
  for (const status of [204, 304, 404, 500]) {
    const options = { mode: "buffer", maxBodyBytes: 1024 } as const;
    const answer = await upstreams.forward(route, client({ url: `/${status}` }), options);
    t.equal(answer.status, status);
    t.equal(answer.body.toString(), status >= 400 ? `status ${status}` : "");
  }
});

t.test("a binary body is byte-exact in both directions", async (t) => {
  const bytes = Buffer.from(Array.from({ length: 256 * 4 }, (_, i) => (i * 7) % 256));
  const up = await upstream(t, (res, seen) => {
    res.writeHead(200, { "content-type": "application/octet-stream" }).end(seen.body);
  });
  const { route, upstreams } = legacy(t, up.url);
  const answer = await upstreams.forward(route, client({ method: "PUT", body: bytes }), {
    mode: "buffer",
    maxBodyBytes: 4096,
  });
  t.ok(up.seen[0]?.body.equals(bytes), "the upstream got every byte");
  t.ok(answer.body.equals(bytes), "the answer has every byte");
});

t.test("hop-by-hop headers are stripped from the request", async (t) => {
  const up = await upstream(t, (res) => res.end());
  const { route, upstreams } = legacy(t, up.url);
  const headers = {
    connection: "x-hop-named, close",
    "x-hop-named": "1",
    "keep-alive": "timeout=5",
    "proxy-authorization": "Basic Zm9vOmJhcg==",
    "proxy-connection": "keep-alive",
    te: "trailers",
    trailer: "x-checksum",
    "transfer-encoding": "chunked",
    upgrade: "h2c",
    "x-end-to-end": "kept",
  };
  await upstreams.forward(route, client({ method: "POST", headers, body: "x" }), BUFFER);
  const seen = up.seen[0]!.headers;
  for (const name of Object.keys(headers).filter(
    (n) => n !== "connection" && n !== "x-end-to-end",
  )) {
    t.equal(seen[name], undefined, `${name} not forwarded`);
  }
  t.not(seen.connection, headers.connection, "the client's Connection is not forwarded");
  t.equal(seen["x-end-to-end"], "kept");
});

t.test("hop-by-hop headers are stripped from the response", async (t) => {
  const up = await upstream(t, (res) => {
    res.setHeader("connection", "x-up-named");
    res.setHeader("x-up-named", "1");
    res.setHeader("keep-alive", "timeout=5");
    res.setHeader("proxy-authenticate", "Basic");
    res.setHeader("trailer", "x-checksum");
    res.setHeader("x-end-to-end", "kept");
    res.write("chunked ");
    res.end("body");
  });
  const { route, upstreams } = legacy(t, up.url);
  const answer = await upstreams.forward(route, client(), { mode: "buffer", maxBodyBytes: 1024 });
  for (const name of ["connection", "x-up-named", "keep-alive", "proxy-authenticate", "trailer"]) {
    t.equal(answer.headers[name], undefined, `${name} not returned`);
  }
  t.equal(answer.headers["transfer-encoding"], undefined, "the upstream's chunking stays there");
  t.equal(answer.headers["x-end-to-end"], "kept");
  t.equal(answer.body.toString(), "chunked body");
});

t.test("X-Forwarded-For is appended to, X-Forwarded-Proto/-Host are set", async (t) => {
  const up = await upstream(t, (res) => res.end());
  const { route, upstreams } = legacy(t, up.url);
  const proxied = { host: "shop.example", "x-forwarded-for": "203.0.113.7" };
  await upstreams.forward(route, client({ headers: proxied }), BUFFER);
  await upstreams.forward(route, client({ headers: { host: "shop.example" } }), BUFFER);
  const [first, second] = up.seen.map((s) => s.headers);
  t.equal(first?.["x-forwarded-for"], "203.0.113.7, 198.51.100.2");
  t.equal(second?.["x-forwarded-for"], "198.51.100.2", "starts the chain when there is none");
  t.equal(first?.["x-forwarded-proto"], "https");
  t.equal(first?.["x-forwarded-host"], "shop.example");
});

t.test("the gateway's Turnout-Token and Turnout-Backend are never forwarded", async (t) => {
  const up = await upstream(t, (res) => res.end());
  const { route, upstreams } = legacy(t, up.url);
  const headers = { "turnout-token": "s3cret", "turnout-backend": "legacy", "turnout-other": "1" };
  await upstreams.forward(route, client({ headers }), BUFFER);
  const seen = up.seen[0]!.headers;
  t.equal(seen["turnout-token"], undefined);
  t.equal(seen["turnout-backend"], undefined);
  t.equal(seen["turnout-other"], "1", "other turnout-* headers are the client's own");
});

t.test("a Fastify reply sends the stream answer as is", async (t) => {
  const up = await upstream(t, (res) => {
    res.setHeader("set-cookie", ["a=1", "b=2"]);
    res.writeHead(201, { location: "/v1/things/10", "content-type": "application/json" });
    res.end('{"id":10}');
  });
  const { route, upstreams } = legacy(t, up.url);
  const app = Fastify();
  app.post("/v1/things", async (req, reply) => {
    const answer = await upstreams.forward(
      route,
      { ...client(), method: req.method, url: req.url, headers: req.headers, body: "{}" },
      { mode: "relay" },
    );
    return reply.code(answer.status).headers(answer.headers).send(answer.body);
  });
  const address = await app.listen({ port: 0, host: "127.0.0.1" });
  t.teardown(() => app.close());
  const res = await request(`${address}/v1/things`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{}",
  });
  t.equal(res.statusCode, 201);
  t.equal(res.headers.location, "/v1/things/10");
  t.same(res.headers["set-cookie"], ["a=1", "b=2"]);
  t.equal(await res.body.text(), '{"id":10}');
});
