// What the kit sends when a handler's result, error body or status is wrong, or
// when the error reply itself cannot be built or sent: always a reply, never a
// silently truncated one, and the worker keeps serving.
import { resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type Msg, type NatsConnection } from "@nats-io/transport-node";
import protobuf from "protobufjs";
import t, { type Test } from "tap";
import { interpretReply } from "../../src/backends/nats/reply.js";
import { type NatsServer, startNatsServer } from "../../src/devtools/nats-server.js";
import {
  loadProtos,
  ServiceError,
  startWorker,
  type Worker,
  type WorkerContext,
} from "../../src/worker/index.js";

const root = protobuf.parse(
  `syntax = "proto3";
  package t.v1;
  message Req { string id = 1; }
  message Item { string sku = 1; int32 qty = 2; }
  message Res {
    string id = 1;
    int32 small = 2;
    uint64 big = 3;
    Item item = 4;
    repeated Item items = 5;
    map<string, Item> by_sku = 6;
  }
  message Err { string error = 1; int64 version = 2; }`,
  { keepCase: true },
).root;
const Req = root.lookupType("t.v1.Req");
const Res = root.lookupType("t.v1.Res");
const Err = root.lookupType("t.v1.Err");
const Item = root.lookupType("t.v1.Item");

type Handle = (req: { id: string }, ctx: WorkerContext) => object;

let server: NatsServer;
let client: NatsConnection;
t.before(async () => {
  server = await startNatsServer();
  client = await connect({ servers: server.url, noAsyncTraces: true });
});
t.teardown(async () => {
  await client.close();
  await server.stop();
});

/**
 * A worker on its own connection (a kit that breaks its connection must not
 * break the other tests), answering with `handle` synchronously or from a
 * later tick. Its teardown waits for stop() at most 5 s, then closes anyway.
 */
async function probe(
  t: Test,
  opts: { subject: string; async: boolean; handle: Handle; onError?: (err: unknown) => void },
): Promise<{ worker: Worker; name: string }> {
  const nc = await connect({ servers: server.url, noAsyncTraces: true });
  const name = `probe-${opts.subject.replaceAll(".", "-")}`;
  const worker = startWorker<{ id: string }>({
    nc,
    root,
    subject: opts.subject,
    requestType: "t.v1.Req",
    responseType: "t.v1.Res",
    errorType: "t.v1.Err",
    service: { name, version: "1.0.0" },
    onError: opts.onError ?? (() => undefined),
    handle: opts.async
      ? async (req, ctx) => {
          await sleep(1);
          return opts.handle(req, ctx);
        }
      : opts.handle,
  });
  t.teardown(async () => {
    await Promise.race([worker.stop(), sleep(5000)]);
    await nc.close();
  });
  await nc.flush();
  return { worker, name };
}

function ask(subject: string, id: string): Promise<Msg> {
  return client.request(subject, Req.encode({ id }).finish(), { timeout: 2000 });
}

/** The reply's outcome, or the request's failure as a value (a timeout when no reply came). */
async function outcome(subject: string, id: string) {
  return ask(subject, id).then(
    (msg): { kind: string; status?: number; message?: string } => interpretReply(msg),
    (err: Error) => ({ kind: "no reply", message: err.message }),
  );
}

/** After the trouble: the endpoint still answers, discovery still answers, stop() resolves. */
async function stillServing(t: Test, subject: string, name: string, worker: Worker) {
  t.has(await outcome(subject, "fine"), { kind: "ok", status: 200 }, "next request answered");
  const ping = await client.request(`$SRV.PING.${name}`, undefined, { timeout: 2000 }).then(
    () => "answered",
    (err: Error) => err.message,
  );
  t.equal(ping, "answered", "$SRV.PING still answered");
  const stopped = await Promise.race([worker.stop().then(() => "stopped"), sleep(5000, "hung")]);
  t.equal(stopped, "stopped", "stop() resolves");
}

const BIG = "x".repeat(2 * 1024 * 1024); // over nats-server's default 1 MiB max_payload

const troubles: { name: string; handle: Handle; message: RegExp; reported: RegExp }[] = [
  {
    name: 'a ServiceError body protobufjs cannot encode (int64 "")',
    handle: () => {
      throw new ServiceError(409, "conflict", { error: "conflict", version: "" });
    },
    message: /body is not a valid t\.v1\.Err: version/,
    reported: /version/,
  },
  {
    name: 'a ServiceError body protobufjs cannot encode (int64 "1-2")',
    handle: () => {
      throw new ServiceError(409, "conflict", { version: "1-2" });
    },
    message: /body is not a valid t\.v1\.Err: version/,
    reported: /version/,
  },
  {
    name: "an error body over the server's max_payload",
    handle: () => {
      throw new ServiceError(400, "bad", { error: BIG });
    },
    message: /^internal error: the 400 error reply could not be sent/,
    reported: /max_payload/,
  },
  {
    name: "an error message over the server's max_payload",
    handle: () => {
      throw new ServiceError(400, BIG);
    },
    message: /^internal error: the 400 error reply could not be sent/,
    reported: /max_payload/,
  },
];

for (const mode of ["sync", "async"] as const) {
  for (const [i, trouble] of troubles.entries()) {
    t.test(
      `${trouble.name}, ${mode} handler: a plain 500 with a message, onError called, worker keeps serving`,
      async (t) => {
        const subject = `t.trouble.${mode}.${i}`;
        const reported: unknown[] = [];
        const { worker, name } = await probe(t, {
          subject,
          async: mode === "async",
          onError: (err) => reported.push(err),
          handle: (req, ctx) => (req.id === "fine" ? { id: "fine" } : trouble.handle(req, ctx)),
        });
        const reply = await outcome(subject, "trigger");
        t.has(reply, { kind: "error", status: 500 });
        t.match(reply.message, trouble.message);
        t.equal(reported.length, 1, "reported once");
        t.match(String(reported[0]), trouble.reported);
        await stillServing(t, subject, name, worker);
      },
    );
  }

  t.test(
    `an onError that throws is contained, ${mode} handler: the request still gets a 500`,
    async (t) => {
      const subject = `t.onerror.${mode}`;
      let calls = 0;
      const { worker, name } = await probe(t, {
        subject,
        async: mode === "async",
        onError: () => {
          calls++;
          throw new Error("logger failed");
        },
        handle: (req) => {
          if (req.id === "fine") return { id: "fine" };
          throw new Error("handler bug");
        },
      });
      // The kit prints the onError failure to the console: its last resort, expected here.
      const printed = t.capture(console, "error");
      t.has(await outcome(subject, "trigger"), {
        kind: "error",
        status: 500,
        message: "internal error",
      });
      t.equal(calls, 1, "onError was called");
      t.match(String(printed()[0]?.args[0]), /onError threw/);
      await stillServing(t, subject, name, worker);
    },
  );
}

t.test(
  "a result with a key that is not a field of the response type is a 500 naming the key, never a truncated reply",
  async (t) => {
    const users = loadProtos([resolve("proto")]);
    const User = users.lookupType("users.v1.User");
    const reported: unknown[] = [];
    const nc = await connect({ servers: server.url, noAsyncTraces: true });
    const worker = startWorker<{ id: string }>({
      nc,
      root: users,
      subject: "t.users.shape",
      requestType: "users.v1.GetUserRequest",
      responseType: "users.v1.User",
      onError: (err) => reported.push(err),
      handle: (req) =>
        req.id === "proto-names"
          ? { id: "u-1", display_name: "Grace", balance_cents: 5, created_at: { seconds: 1 } }
          : { id: "u-1", displayName: "Grace", balanceCents: 5, createdAt: { seconds: 1 } },
    });
    t.teardown(async () => {
      await worker.stop();
      await nc.close();
    });
    await nc.flush();
    const GetUserRequest = users.lookupType("users.v1.GetUserRequest");
    const get = (id: string) =>
      client
        .request("t.users.shape", GetUserRequest.encode({ id }).finish(), { timeout: 2000 })
        .then(interpretReply);
    const camel = await get("camel");
    t.has(camel, { kind: "error", status: 500 });
    t.match(camel.kind === "error" && camel.message, /users\.v1\.User: displayName: not a field/);
    t.match(String(reported[0]), /displayName/);
    const proto = await get("proto-names");
    t.equal(proto.kind, "ok", "the same result with the proto names is sent");
    t.match(User.toObject(User.decode(proto.data), { longs: Number }), {
      display_name: "Grace",
      balance_cents: 5,
      created_at: { seconds: 1 },
    });
  },
);

t.test(
  "unknown keys in nested, repeated and map messages, and integers protobufjs would wrap, are a 500 naming the path",
  async (t) => {
    const results: Record<string, object> = {
      nested: { id: "a", item: { sku: "s", quantity: 1 } },
      repeated: { id: "a", items: [{ sku: "s" }, { sku: "t", Qty: 2 }] },
      map: { id: "a", by_sku: { s: { sku: "s", count: 1 } } },
      int32: { id: "a", small: 2 ** 40 },
      uint64: { id: "a", big: -1 },
      "nested-int32": { id: "a", items: [{ qty: 2 ** 31 }] },
      date: { id: "a", item: new Date() },
    };
    const expected: Record<string, RegExp> = {
      nested: /item\.quantity: not a field of t\.v1\.Item/,
      repeated: /items\[1\]\.Qty: not a field of t\.v1\.Item/,
      map: /by_sku\["s"\]\.count: not a field of t\.v1\.Item/,
      int32: /small: 1099511627776 is out of range for int32/,
      uint64: /big: -1 is out of range for uint64/,
      "nested-int32": /items\[0\]\.qty: 2147483648 is out of range for int32/,
      date: /item: a Date is not a t\.v1\.Item/,
    };
    const reported: unknown[] = [];
    await probe(t, {
      subject: "t.shape.nested",
      async: false,
      onError: (err) => reported.push(err),
      handle: (req) =>
        req.id === "whole"
          ? Res.create({
              id: "w",
              small: -(2 ** 31),
              big: 2 ** 53,
              item: Item.create({ sku: "i" }),
              items: [{ sku: "s", qty: 2 ** 31 - 1 }],
              by_sku: { s: { sku: "s", qty: 1 } },
            })
          : (results[req.id] as object),
    });
    for (const [id, message] of Object.entries(expected)) {
      const reply = await outcome("t.shape.nested", id);
      t.has(reply, { kind: "error", status: 500 }, `${id}: 500`);
      t.match(reply.message, message, `${id}: names the path`);
    }
    t.equal(reported.length, Object.keys(expected).length, "each one reported");
    const whole = await ask("t.shape.nested", "whole");
    t.equal(
      interpretReply(whole).kind,
      "ok",
      "a message instance with every kind of field is sent",
    );
    t.match(Res.toObject(Res.decode(whole.data), { longs: Number }), {
      small: -(2 ** 31),
      big: 2 ** 53,
      items: [{ sku: "s", qty: 2 ** 31 - 1 }],
      by_sku: { s: { sku: "s", qty: 1 } },
    });
  },
);

t.test(
  "an error body with a wrong key or a value protobufjs would coerce or drop is a 500 naming it, not a truncated body",
  async (t) => {
    const bodies: Record<string, { body: object; message: RegExp }> = {
      "number-for-string": { body: { error: 5 }, message: /error: string expected/ },
      bigint: { body: { version: 12n }, message: /version: integer\|Long expected/ },
      "not-a-number": { body: { version: "abc" }, message: /version: integer\|Long expected/ },
      "unknown-key": {
        body: { error: "x", reason: "y" },
        message: /reason: not a field of t\.v1\.Err/,
      },
    };
    const reported: unknown[] = [];
    await probe(t, {
      subject: "t.shape.error",
      async: true,
      onError: (err) => reported.push(err),
      handle: (req) => {
        if (req.id === "good") throw new ServiceError(404, "nf", { error: "nf", version: 3 });
        throw new ServiceError(404, "nf", bodies[req.id]?.body);
      },
    });
    for (const [id, { message }] of Object.entries(bodies)) {
      const reply = await outcome("t.shape.error", id);
      t.has(reply, { kind: "error", status: 500 }, `${id}: 500`);
      t.match(reply.message, /^ServiceError 404 body is not a valid t\.v1\.Err: /);
      t.match(reply.message, message, `${id}: names the field`);
    }
    t.equal(reported.length, Object.keys(bodies).length, "each one reported");
    const good = await ask("t.shape.error", "good");
    t.has(interpretReply(good), { kind: "error", status: 404 }, "a good body is still sent");
    t.match(Err.toObject(Err.decode(good.data), { longs: Number }), { error: "nf", version: 3 });
  },
);

t.test(
  "ctx.httpStatus other than an integer 200-299 is a 500, reported and counted as an error",
  async (t) => {
    const statuses: Record<string, unknown> = {
      "404": 404,
      frac: 201.5,
      "300": 300,
      text: "201",
    };
    const reported: unknown[] = [];
    const { worker, name } = await probe(t, {
      subject: "t.status",
      async: false,
      onError: (err) => reported.push(err),
      handle: (req, ctx) => {
        ctx.httpStatus = (req.id === "created" ? 201 : statuses[req.id]) as number;
        return { id: req.id };
      },
    });
    for (const [id, status] of Object.entries(statuses)) {
      const reply = await outcome("t.status", id);
      t.has(reply, { kind: "error", status: 500 }, `${id}: 500`);
      t.match(reply.message, `ctx.httpStatus must be an integer 200-299, got ${String(status)}`);
    }
    t.equal(reported.length, 4, "each one reported");
    t.has(await outcome("t.status", "created"), { kind: "ok", status: 201 }, "201 still sent");
    const stats = await client.request(`$SRV.STATS.${name}.${worker.serviceId}`, undefined, {
      timeout: 2000,
    });
    t.match(stats.json(), { endpoints: [{ num_requests: 5, num_errors: 4 }] });
  },
);
