import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import t, { type Test } from "tap";
import { compileRequestHeaders } from "../../../src/backends/nats/headers.js";
import { NatsRequester } from "../../../src/backends/nats/requester.js";
import { NatsStatus } from "../../../src/backends/nats/status.js";
import { type NatsServer, startNatsServer } from "../../../src/devtools/nats-server.js";
import { TurnoutError } from "../../../src/errors.js";
import { within } from "../../helpers/cutover-fixture.js";

const enc = new TextEncoder();
const dec = new TextDecoder();

let server: NatsServer;
let nc: NatsConnection;
t.before(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url, noAsyncTraces: true });
  // echo: replies with the body and the route header it saw, after `delay` ms if the body says so
  nc.subscribe("echo", {
    callback: (_err, msg) => {
      const h = headers();
      h.set("Seen-Route", msg.headers?.get("Turnout-Route") ?? "");
      h.set("Seen-Lang", msg.headers?.values("x-lang").join("|") ?? "");
      const delay = Number(dec.decode(msg.data).match(/^delay:(\d+)/)?.[1] ?? 0);
      setTimeout(() => msg.respond(msg.data, { headers: h }), delay);
    },
  });
  nc.subscribe("silent", { callback: () => undefined });
  await nc.flush();
});
t.teardown(async () => {
  await nc.close();
  await server.stop();
});

function codeOf(err: unknown): string {
  return err instanceof TurnoutError ? err.code : `not a TurnoutError: ${String(err)}`;
}

for (const coalesce of [true, false]) {
  t.test(`a reply comes back with its body and headers (coalesce: ${coalesce})`, async (t) => {
    const requester = new NatsRequester(nc, { coalesce });
    t.teardown(() => requester.close());
    const hdrs = compileRequestHeaders("users.get", ["x-lang"])("req-1", {
      "x-lang": ["fr", "de"],
    });
    const reply = await requester.request("echo", enc.encode("hello"), hdrs, 2000);
    t.equal(dec.decode(reply.data), "hello");
    t.equal(reply.headers?.get("Seen-Route"), "users.get");
    t.equal(reply.headers?.get("Seen-Lang"), "fr|de", "both values of a repeated header arrive");
    t.equal(requester.inFlight, 0, "nothing left pending");
  });
}

t.test("no responders is reported at once, long before the timeout", async (t) => {
  const requester = new NatsRequester(nc);
  t.teardown(() => requester.close());
  const timeoutMs = 2000;
  const t0 = performance.now();
  const err = await requester
    .request("nobody.home", enc.encode("x"), undefined, timeoutMs)
    .catch((e) => e);
  const elapsed = performance.now() - t0;
  t.equal(codeOf(err), "TURNOUT_ERR_NO_RESPONDERS");
  t.equal((err as TurnoutError).status, 503);
  t.ok(elapsed < timeoutMs / 4, `answered in ${elapsed.toFixed(1)} ms, timeout ${timeoutMs} ms`);
  t.equal(requester.inFlight, 0);
});

t.test("a worker that never answers is a TIMEOUT after the timeout, not before", async (t) => {
  const requester = new NatsRequester(nc);
  t.teardown(() => requester.close());
  const t0 = performance.now();
  const err = await requester.request("silent", enc.encode("x"), undefined, 200).catch((e) => e);
  const elapsed = performance.now() - t0;
  t.equal(codeOf(err), "TURNOUT_ERR_TIMEOUT");
  t.equal((err as TurnoutError).status, 504);
  t.ok(elapsed >= 199, `rejected after ${elapsed.toFixed(1)} ms`);
  t.equal(requester.inFlight, 0);
});

t.test(
  "concurrent requests with mixed timeouts each resolve or time out on their own deadline",
  async (t) => {
    const requester = new NatsRequester(nc);
    t.teardown(() => requester.close());
    // Margins of 400 ms or more: a busy machine (load 10 on 2 cores seen) must not flip an outcome.
    const timeouts = [400, 2000, 3000];
    const cases: Array<{ subject: string; delay: number; timeout: number }> = [];
    for (let i = 0; i < 300; i++) {
      const subject = i % 5 === 0 ? "silent" : "echo";
      cases.push({ subject, delay: i % 2 === 0 ? 0 : 1000, timeout: timeouts[i % 3]! });
    }
    const t0 = performance.now();
    const outcomes = await Promise.all(
      cases.map((c) =>
        requester.request(c.subject, enc.encode(`delay:${c.delay}`), undefined, c.timeout).then(
          () => ({ ok: true, at: performance.now() - t0 }),
          (err) => ({ ok: false, code: codeOf(err), at: performance.now() - t0 }),
        ),
      ),
    );
    const wrong: string[] = [];
    let early = 0;
    cases.forEach((c, i) => {
      const o = outcomes[i]!;
      const shouldAnswer = c.subject === "echo" && c.delay < c.timeout;
      const code = "code" in o ? o.code : "ok";
      if (o.ok !== shouldAnswer || (!o.ok && code !== "TURNOUT_ERR_TIMEOUT")) {
        wrong.push(`${JSON.stringify(c)} -> ${code} at ${o.at.toFixed(0)} ms`);
      }
      if (!o.ok && o.at < c.timeout - 1) early++;
    });
    t.same(wrong, [], "every request ends as its deadline and the worker's delay dictate");
    t.equal(early, 0, "no request times out before its own timeout");
    t.equal(requester.inFlight, 0);
  },
);

t.test(
  "close() rejects every request in flight, sent ones as timeouts (never retried on a write), and refuses new ones",
  async (t) => {
    const requester = new NatsRequester(nc);
    const sent = [1, 2, 3].map((i) =>
      requester.request("silent", enc.encode(String(i)), undefined, 10_000).catch((e) => e),
    );
    await new Promise((resolve) => setImmediate(resolve));
    // Still in the outbox: published at the next turn, which never comes.
    const unsent = requester.request("silent", enc.encode("4"), undefined, 10_000).catch((e) => e);
    t.equal(requester.inFlight, 4);
    requester.close();
    const errs = await Promise.all(sent);
    t.same(errs.map(codeOf), Array(3).fill("TURNOUT_ERR_TIMEOUT"));
    t.match((errs[0] as Error).message, /may have received it/);
    const notSent = await unsent;
    t.equal(codeOf(notSent), "TURNOUT_ERR_NOT_CONNECTED", "one never sent may go elsewhere");
    t.match((notSent as Error).message, /not sent/);
    t.equal(requester.inFlight, 0);
    const late = await requester.request("echo", enc.encode("x"), undefined, 1000).catch((e) => e);
    t.equal(codeOf(late), "TURNOUT_ERR_NOT_CONNECTED");
  },
);

t.test("drain() refuses new requests and waits for the replies still to come", async (t) => {
  const requester = new NatsRequester(nc);
  t.teardown(() => requester.close());
  const slow = requester.request("echo", enc.encode("delay:150"), undefined, 2000);
  await new Promise((resolve) => setTimeout(resolve, 20));
  let drained = false;
  const draining = requester.drain().then(() => {
    drained = true;
  });
  const refused = await requester.request("echo", enc.encode("x"), undefined, 1000).catch((e) => e);
  t.equal(codeOf(refused), "TURNOUT_ERR_DRAINING");
  t.equal(drained, false, "not drained while a reply is due");
  t.equal(dec.decode((await slow).data), "delay:150", "the request in flight got its reply");
  await draining;
  t.equal(requester.inFlight, 0);
});

t.test(
  "a closed connection is NOT_CONNECTED at once and abandons requests in flight as timeouts (they were sent)",
  async (t) => {
    const own = await connect({ servers: server.url, noAsyncTraces: true });
    const requester = new NatsRequester(own);
    const inFlight = requester
      .request("silent", enc.encode("x"), undefined, 10_000)
      .catch((e) => e);
    await own.flush();
    await own.close();
    t.equal(codeOf(await inFlight), "TURNOUT_ERR_TIMEOUT");
    const after = await requester.request("echo", enc.encode("x"), undefined, 1000).catch((e) => e);
    t.equal(codeOf(after), "TURNOUT_ERR_NOT_CONNECTED");
  },
);

for (const coalesce of [true, false]) {
  t.test(`NOT_CONNECTED at once while the server is down (coalesce: ${coalesce})`, async (t) => {
    const own = await startNatsServer();
    const conn = await connect({
      servers: own.url,
      noAsyncTraces: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 50,
    });
    const requester = new NatsRequester(conn, { coalesce });
    t.teardown(async () => {
      requester.close();
      await conn.close();
    });
    const disconnected = (async () => {
      for await (const s of conn.status()) if (s.type === "disconnect") return;
    })();
    await own.stop();
    await disconnected;
    const t0 = performance.now();
    const err = await requester.request("echo", enc.encode("x"), undefined, 2000).catch((e) => e);
    t.equal(codeOf(err), "TURNOUT_ERR_NOT_CONNECTED");
    t.ok(performance.now() - t0 < 500, "refused without waiting for the timeout");
  });
}

t.test(
  "a payload above the server's max_payload is refused (413) without being sent",
  async (t) => {
    const requester = new NatsRequester(nc);
    t.teardown(() => requester.close());
    const big = new Uint8Array((nc.info?.max_payload ?? 1 << 20) + 1);
    const err = await requester.request("echo", big, undefined, 1000).catch((e) => e);
    t.equal(codeOf(err), "TURNOUT_ERR_BODY_TOO_LARGE");
    t.match((err as Error).message, /max_payload/);
    t.equal(requester.inFlight, 0);
  },
);

t.test(
  "a request over the server's max_payload is a 413 BODY_TOO_LARGE, sent nowhere",
  async (t) => {
    const dir = t.testdir({ "small.conf": "max_payload: 1024\n" });
    const small = await startNatsServer({ args: ["-c", `${dir}/small.conf`] });
    t.teardown(() => small.stop());
    const nc = await connect({ servers: small.url });
    t.teardown(() => nc.close());
    for (const coalesce of [true, false]) {
      const requester = new NatsRequester(nc, { coalesce });
      t.teardown(() => requester.close());
      const refused = requester.request("svc.big", new Uint8Array(2048), undefined, 1000);
      await t.rejects(
        refused,
        { code: "TURNOUT_ERR_BODY_TOO_LARGE", status: 413 },
        `coalesce ${coalesce}`,
      );
    }
  },
);

/** A server whose user `gw` has the given permissions; `wk` may do anything. */
async function serverWithPermissions(t: Test, permissions: string) {
  const dir = mkdtempSync(join(tmpdir(), "turnout-permissions-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "nats.conf");
  const grant = (p: string) =>
    writeFileSync(
      file,
      `authorization { users: [\n  { user: gw, password: gw, permissions: ${p} },\n  { user: wk, password: wk }\n] }\n`,
    );
  grant(permissions);
  const restricted = await startNatsServer({ args: ["-c", file] });
  t.teardown(() => restricted.stop());
  const worker = await connect({ servers: restricted.url, user: "wk", pass: "wk" });
  t.teardown(() => worker.close());
  worker.subscribe("svc.>", {
    callback: (_err, msg) => {
      msg.respond(msg.data);
    },
  });
  await worker.flush();
  const gateway = await connect({ servers: restricted.url, user: "gw", pass: "gw" });
  t.teardown(() => gateway.close());
  /** Rewrites the permissions and has the server reload them (SIGHUP). */
  const regrant = (p: string) => {
    grant(p);
    restricted.process.kill("SIGHUP");
  };
  return { gateway, regrant };
}

t.test(
  "a refused reply inbox ends requests at once, refuses new ones with the reason, and is subscribed again once granted",
  async (t) => {
    const { gateway, regrant } = await serverWithPermissions(
      t,
      `{ publish: ">", subscribe: "svc.>" }`,
    );
    const requester = new NatsRequester(gateway, { inboxRetryMs: 100 });
    t.teardown(() => requester.close());
    const first = await requester.request("svc.echo", enc.encode("a"), undefined, 30_000).then(
      () => undefined,
      (err: unknown) => err,
    );
    t.match(String(first), /reply inbox/, "not left to its 30 s timeout");
    t.match(requester.problem, /^NATS refused the reply inbox subscription: Permissions Violation/);
    const refused = await requester
      .request("svc.echo", enc.encode("b"), undefined, 30_000)
      .catch((err: unknown) => err);
    t.equal(codeOf(refused), "TURNOUT_ERR_NOT_CONNECTED", "refused at once: legacy may serve it");

    regrant(`{ publish: ">", subscribe: ">" }`);
    const answered = () =>
      requester.request("svc.echo", enc.encode("c"), undefined, 1000).then(
        (msg) => dec.decode(msg.data) === "c",
        () => false,
      );
    t.ok(await within(10_000, answered), "answers again once the server grants the inbox");
    t.equal(requester.problem, undefined);
  },
);

t.test(
  "a publish the server refuses ends its request at once, naming the permission, not as a timeout",
  async (t) => {
    const { gateway } = await serverWithPermissions(
      t,
      `{ publish: ["svc.allowed", "_INBOX.>"], subscribe: ">" }`,
    );
    const requester = new NatsRequester(gateway);
    t.teardown(() => requester.close());
    const err = await requester
      .request("svc.denied", enc.encode("x"), undefined, 30_000)
      .catch((e: unknown) => e);
    t.equal(codeOf(err), "TURNOUT_ERR_NOT_CONNECTED");
    t.match(String(err), /refused the publish to svc\.denied: Permissions Violation for Publish/);
    const ok = await requester.request("svc.allowed", enc.encode("y"), undefined, 5000);
    t.equal(dec.decode(ok.data), "y", "other subjects are answered");
  },
);

t.test(
  "a refused reply inbox is logged once, however often it is tried again under a new name, and refuses requests all along",
  async (t) => {
    const { gateway } = await serverWithPermissions(t, `{ publish: ">", subscribe: "svc.>" }`);
    const errors: string[] = [];
    const status = new NatsStatus(undefined, undefined, {
      info: () => {},
      warn: () => {},
      error: (line) => errors.push(line),
    });
    status.attach(gateway);
    const requester = new NatsRequester(gateway, { inboxRetryMs: 50 });
    t.teardown(() => requester.close());
    // About 20 tries; between a try and the server's answer, requests stay refused.
    t.ok(await within(10_000, () => requester.problem !== undefined), "refused");
    let readyMeanwhile = 0;
    for (const end = Date.now() + 1000; Date.now() < end; ) {
      if (requester.problem === undefined) readyMeanwhile++;
      await new Promise((resolve) => setImmediate(resolve));
    }
    t.equal(readyMeanwhile, 0, "refused all along");
    t.same(errors, [
      'NATS: Permissions Violation for Subscription to "_INBOX.<id>.*" (the gateway\'s NATS user lacks the permission)',
    ]);
  },
);
