import { once } from "node:events";
import http from "node:http";
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import t, { type Test } from "tap";
import { LegacyUpstreams } from "../../../src/backends/legacy/upstreams.js";
import { forwardFailure, listenOnLoopback, PLAIN_GET } from "../../helpers/legacy-server.js";

/** A real upstream on port 0 that counts the connections it accepted. */
async function upstream(t: Test, handler: http.RequestListener) {
  const server = http.createServer(handler);
  let connections = 0;
  server.on("connection", () => connections++);
  const url = await listenOnLoopback(t, server);
  return { url, connections: () => connections };
}

function legacy(t: Test, base: string) {
  const route = { name: "files", legacy: base, timeoutMs: 2000 };
  const upstreams = new LegacyUpstreams([route]);
  t.teardown(() => upstreams.close());
  return { route, upstreams };
}

for (const declared of [false, true]) {
  const length = declared ? "a declared length past RELAY_WHOLE_MAX_BYTES" : "no declared length";
  t.test(
    `relay mode streams a body of ${length}: the first chunk comes before the end`,
    async (t) => {
      const chunk = Buffer.alloc(64 * 1024, "a");
      const count = 64;
      let release = () => {};
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      let ended = false;
      const up = await upstream(t, async (_req, res) => {
        const head = declared ? { "content-length": String(chunk.length * count) } : {};
        res.writeHead(200, { "content-type": "application/octet-stream", ...head });
        res.write(chunk);
        // Without the client's go-ahead the test fails, but never hangs.
        await Promise.race([released, sleep(3000, undefined, { ref: false })]);
        for (let i = 1; i < count; i++) {
          if (!res.write(chunk)) await once(res, "drain");
        }
        res.end(() => {
          ended = true;
        });
      });
      const { route, upstreams } = legacy(t, up.url);
      const answer = await upstreams.forward(route, PLAIN_GET, { mode: "relay" });
      if (Buffer.isBuffer(answer.body))
        throw new Error("a large or unknown-length body must stream");
      const body = answer.body[Symbol.asyncIterator]();
      const first = await body.next();
      t.equal(ended, false, "the first chunk arrived before the upstream ended");
      t.ok((first.value as Buffer).length > 0);
      release();
      let total = (first.value as Buffer).length;
      for (let next = await body.next(); !next.done; next = await body.next()) {
        total += (next.value as Buffer).length;
      }
      t.equal(total, chunk.length * count, "every byte arrived");
      if (!declared)
        t.equal(answer.headers["transfer-encoding"], undefined, "the client side chunks anew");
    },
  );
}

t.test("relay mode reads a small declared body whole, byte for byte", async (t) => {
  const bytes = Buffer.from([0, 1, 2, 250, 255, 10, 13]);
  const up = await upstream(t, (_req, res) => {
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": "7" });
    res.end(bytes);
  });
  const { route, upstreams } = legacy(t, up.url);
  const answer = await upstreams.forward(route, PLAIN_GET, { mode: "relay" });
  t.ok(Buffer.isBuffer(answer.body), "read whole");
  t.same([...(answer.body as Buffer)], [...bytes]);
  t.equal(answer.headers["content-length"], "7");
});

t.test("buffer mode returns the whole body up to the cap, inclusive", async (t) => {
  const up = await upstream(t, (_req, res) => res.end("x".repeat(1000)));
  const { route, upstreams } = legacy(t, up.url);
  const answer = await upstreams.forward(route, PLAIN_GET, { mode: "buffer", maxBodyBytes: 1000 });
  t.ok(Buffer.isBuffer(answer.body));
  t.equal(answer.body.length, 1000);
});

t.test("buffer mode refuses a body over the cap, declared or chunked", async (t) => {
  const up = await upstream(t, (req, res) => {
    if (req.url === "/declared") res.setHeader("content-length", "10000");
    for (let i = 0; i < 10; i++) res.write("y".repeat(1000));
    res.end();
  });
  const { route, upstreams } = legacy(t, up.url);
  for (const url of ["/declared", "/chunked"]) {
    const options = { mode: "buffer", maxBodyBytes: 4096 } as const;
    const error = await forwardFailure(upstreams.forward(route, { ...PLAIN_GET, url }, options));
    t.equal(error.code, "TURNOUT_ERR_UPSTREAM_TOO_LARGE", url);
    t.match(error.message, /over the cap of 4096 bytes/, url);
  }
});

t.test(
  "sequential requests reuse one pooled connection, across routes of one origin",
  async (t) => {
    const up = await upstream(t, (_req, res) => res.end("ok"));
    const users = { name: "users", legacy: `${up.url}/users-api`, timeoutMs: 2000 };
    const orders = { name: "orders", legacy: `${up.url}/orders-api`, timeoutMs: 2000 };
    const upstreams = new LegacyUpstreams([users, orders]);
    t.teardown(() => upstreams.close());
    t.same(upstreams.origins, [up.url], "one pool for the two routes");
    for (let i = 0; i < 6; i++) {
      const route = i % 2 === 0 ? users : orders;
      const answer = await upstreams.forward(route, PLAIN_GET, {
        mode: "buffer",
        maxBodyBytes: 10,
      });
      t.equal(answer.body.toString(), "ok");
      // undici frees the socket just after the body's end: a request in that same
      // tick would open a second one. Real requests arrive on separate I/O events.
      await new Promise(setImmediate);
    }
    t.equal(up.connections(), 1);
  },
);

t.test(
  "a streamed answer nobody reads is cut once it stops moving, freeing its pooled connection",
  async (t) => {
    const chunk = Buffer.alloc(64 * 1024, "a");
    const up = await upstream(t, (req, res) => {
      if (req.url === "/small") return void res.end('{"ok":true}');
      res.writeHead(200, { "content-type": "application/octet-stream" });
      let left = 3200; // 200 MiB at most, written only as fast as it drains
      const more = () => {
        while (left-- > 0) if (!res.write(chunk)) return void res.once("drain", more);
        res.end();
      };
      res.on("close", () => {
        left = 0;
      });
      more();
    });
    const route = { name: "files", legacy: up.url, timeoutMs: 2000 };
    const upstreams = new LegacyUpstreams([route], { connections: 1, stallMs: 300 });
    t.teardown(() => upstreams.close());
    const answer = await upstreams.forward(route, { ...PLAIN_GET, url: "/big" }, { mode: "relay" });
    const body = answer.body as Readable;
    // Never read: it stops moving at once. Bounded, so a body never cut fails the test.
    const [error] = await Promise.race([once(body, "error"), sleep(3000).then(() => [])]);
    t.match(error, { code: "TURNOUT_ERR_UPSTREAM_TIMEOUT", message: /did not move for 300 ms/ });
    const next = await upstreams.forward(route, { ...PLAIN_GET, url: "/small" }, { mode: "relay" });
    t.equal(next.status, 200, "the one pooled connection serves the next request");
  },
);

t.test("close() lets the request in flight finish, then refuses as draining", async (t) => {
  const up = await upstream(t, (_req, res) => {
    setTimeout(() => res.end("late"), 100);
  });
  const { route, upstreams } = legacy(t, up.url);
  const inFlight = upstreams.forward(route, PLAIN_GET, { mode: "buffer", maxBodyBytes: 10 });
  await sleep(20);
  await upstreams.close();
  t.equal((await inFlight).body.toString(), "late");
  const error = await forwardFailure(upstreams.forward(route, PLAIN_GET, { mode: "relay" }));
  t.equal(error.code, "TURNOUT_ERR_DRAINING");
  t.equal(error.status, 503);
});

t.test("pool options are validated, not defaulted when invalid", async (t) => {
  t.throws(() => new LegacyUpstreams([], { connections: 0 }), RangeError);
  t.throws(() => new LegacyUpstreams([], { connectTimeoutMs: 1.5 }), RangeError);
});
