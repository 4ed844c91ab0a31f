import { connect, type Msg, type NatsConnection } from "@nats-io/transport-node";
import protobuf from "protobufjs";
import t from "tap";
import { compileRequestHeaders } from "../../src/backends/nats/headers.js";
import { interpretReply } from "../../src/backends/nats/reply.js";
import { NatsRequester } from "../../src/backends/nats/requester.js";
import { type NatsServer, startNatsServer } from "../../src/devtools/nats-server.js";
import { TurnoutError } from "../../src/errors.js";
import { ServiceError, startWorker, type WorkerContext } from "../../src/worker/index.js";

const root = protobuf.parse(
  `syntax = "proto3";
  package test.v1;
  message GetUserRequest { string id = 1; }
  message User { string id = 1; string name = 2; string served_by = 3; }
  message Error { string code = 1; string detail = 2; }`,
  { keepCase: true },
).root;
const GetUserRequest = root.lookupType("test.v1.GetUserRequest");
const User = root.lookupType("test.v1.User");
const ErrorType = root.lookupType("test.v1.Error");

interface Req {
  id: string;
}

let server: NatsServer;
let nc: NatsConnection;
let requester: NatsRequester;
t.before(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url, noAsyncTraces: true });
  requester = new NatsRequester(nc);
});
t.teardown(async () => {
  requester.close();
  await nc.close();
  await server.stop();
});

const types = {
  requestType: "test.v1.GetUserRequest",
  responseType: "test.v1.User",
  errorType: "test.v1.Error",
};

function ask(subject: string, id: string): Promise<Msg> {
  const payload = GetUserRequest.encode({ id }).finish();
  const headers = compileRequestHeaders("users.get", [])(`req-${id}`, {});
  return requester.request(subject, payload, headers, 2000);
}

t.test(
  "the handler gets the decoded request and the context; its answer is the reply",
  async (t) => {
    const seen: WorkerContext[] = [];
    const worker = startWorker<Req>({
      nc,
      root,
      subject: "t.ok",
      ...types,
      handle: (req, ctx) => {
        seen.push(ctx);
        return { id: req.id, name: "Ada" };
      },
    });
    t.teardown(() => worker.stop());
    await nc.flush();
    const reply = interpretReply(await ask("t.ok", "7"));
    t.equal(reply.kind, "ok");
    t.same(User.toObject(User.decode(reply.data)), { id: "7", name: "Ada" });
    t.equal(reply.status, 200);
    t.equal(seen[0]?.requestId, "req-7");
    t.equal(seen[0]?.route, "users.get");
    t.equal(seen[0]?.subject, "t.ok");
  },
);

t.test(
  "a ServiceError becomes the error headers and its body encoded as the error type",
  async (t) => {
    const worker = startWorker<Req>({
      nc,
      root,
      subject: "t.missing",
      ...types,
      handle: (req) => {
        throw new ServiceError(404, `user ${req.id}\nnot found`, {
          code: "not_found",
          detail: req.id,
        });
      },
    });
    t.teardown(() => worker.stop());
    await nc.flush();
    const msg = await ask("t.missing", "9");
    t.equal(msg.headers?.get("Nats-Service-Error-Code"), "404");
    t.equal(msg.headers?.get("Nats-Service-Error"), "user 9 not found", "line breaks flattened");
    t.same(ErrorType.toObject(ErrorType.decode(msg.data)), { code: "not_found", detail: "9" });
    t.has(interpretReply(msg), { kind: "error", status: 404 });
  },
);

t.test("ctx.httpStatus sets Http-Status on the success reply", async (t) => {
  const worker = startWorker<Req>({
    nc,
    root,
    subject: "t.created",
    ...types,
    handle: (req, ctx) => {
      ctx.httpStatus = 201;
      return { id: req.id };
    },
  });
  t.teardown(() => worker.stop());
  await nc.flush();
  const msg = await ask("t.created", "1");
  t.equal(msg.headers?.get("Http-Status"), "201");
  t.has(interpretReply(msg), { kind: "ok", status: 201 });
});

t.test("any other thrown error is a 500 without its message, reported to onError", async (t) => {
  const reported: unknown[] = [];
  const worker = startWorker<Req>({
    nc,
    root,
    subject: "t.crash",
    ...types,
    handle: () => {
      throw new Error("db password is hunter2");
    },
    onError: (err) => reported.push(err),
  });
  t.teardown(() => worker.stop());
  await nc.flush();
  const msg = await ask("t.crash", "1");
  t.has(interpretReply(msg), { kind: "error", status: 500, message: "internal error" });
  t.equal(reported.length, 1);
});

t.test(
  "a response that does not fit the response type is a 500, not a corrupt reply",
  async (t) => {
    const reported: unknown[] = [];
    const worker = startWorker<Req, object>({
      nc,
      root,
      subject: "t.badresponse",
      ...types,
      handle: () => ({ id: 42 }),
      onError: (err) => reported.push(err),
    });
    t.teardown(() => worker.stop());
    await nc.flush();
    t.has(interpretReply(await ask("t.badresponse", "1")), { kind: "error", status: 500 });
    t.match(String(reported[0]), /not a valid test\.v1\.User.*id/);
  },
);

t.test("an undecodable request is answered 400 without calling the handler", async (t) => {
  let called = false;
  const worker = startWorker<Req>({
    nc,
    root,
    subject: "t.garbage",
    ...types,
    handle: () => {
      called = true;
      return {};
    },
  });
  t.teardown(() => worker.stop());
  await nc.flush();
  // field 1 with wire type 7, which does not exist
  const msg = await requester.request("t.garbage", new Uint8Array([0x0f, 0xff]), undefined, 2000);
  const reply = interpretReply(msg);
  t.has(reply, { kind: "error", status: 400 });
  t.match(reply.kind === "error" ? reply.message : "", /undecodable test\.v1\.GetUserRequest/);
  t.equal(called, false);
  // field 1 (a string) as a varint: protobufjs alone would drop it and call the handler with id ""
  const mistyped = await requester.request(
    "t.garbage",
    new Uint8Array([0x08, 0x05]),
    undefined,
    2000,
  );
  const refused = interpretReply(mistyped);
  t.has(refused, { kind: "error", status: 400 });
  t.match(
    refused.kind === "error" ? refused.message : "",
    /undecodable test\.v1\.GetUserRequest: field id \(number 1\) has wire type 0, which does not fit it/,
  );
  t.equal(called, false, "a field of the wrong wire type is not taken for a missing one");
});

t.test(
  "unknown fields of a request are dropped: a handler echoing it sends none back",
  async (t) => {
    const worker = startWorker<Req, object>({
      nc,
      root,
      subject: "t.echo-unknown",
      ...types,
      handle: (req) => req,
    });
    t.teardown(() => worker.stop());
    await nc.flush();
    // id "u1", then field 9 (unknown) as a varint
    const bytes = new Uint8Array([0x0a, 0x02, 0x75, 0x31, 0x48, 0x2a]);
    const reply = interpretReply(await requester.request("t.echo-unknown", bytes, undefined, 2000));
    t.has(reply, { kind: "ok" });
    t.same(reply.kind === "ok" ? [...reply.data] : [], [0x0a, 0x02, 0x75, 0x31]);
  },
);

t.test("two workers in the default queue group share the requests", async (t) => {
  const counts = { a: 0, b: 0 };
  const make = (name: "a" | "b") =>
    startWorker<Req>({
      nc,
      root,
      subject: "t.shared",
      ...types,
      handle: (req) => {
        counts[name]++;
        return { id: req.id, served_by: name };
      },
    });
  const workers = [make("a"), make("b")];
  t.teardown(() => Promise.all(workers.map((w) => w.stop())));
  await nc.flush();
  const total = 60;
  await Promise.all(Array.from({ length: total }, (_, i) => ask("t.shared", String(i))));
  t.equal(counts.a + counts.b, total, "each request served exactly once");
  t.ok(counts.a > 0 && counts.b > 0, `both served: a=${counts.a} b=${counts.b}`);
});

t.test("stop() lets a request in progress finish and answer, then takes no more", async (t) => {
  let release: () => void = () => undefined;
  let markStarted: () => void = () => undefined;
  const started = new Promise<void>((resolve) => (markStarted = resolve));
  const worker = startWorker<Req>({
    nc,
    root,
    subject: "t.slow",
    ...types,
    handle: async (req) => {
      markStarted();
      await new Promise<void>((resolve) => (release = resolve));
      return { id: req.id };
    },
  });
  await nc.flush();
  const inProgress = ask("t.slow", "5");
  await started;
  // Twice, as drainOnSignals and an app's own shutdown hook both may: both resolve.
  const stopped = Promise.all([worker.stop(), worker.stop()]);
  setTimeout(() => release(), 50);
  await stopped;
  t.has(interpretReply(await inProgress), { kind: "ok", status: 200 });
  const after = await ask("t.slow", "6").catch((e) => e);
  t.equal(after instanceof TurnoutError && after.code, "TURNOUT_ERR_NO_RESPONDERS");
});

t.test("ServiceError refuses a code that is not an HTTP error status", async (t) => {
  t.throws(() => new ServiceError(200, "fine"), RangeError);
  t.throws(() => new ServiceError(404.5, "half"), RangeError);
  t.equal(new ServiceError(409, "conflict").code, 409);
});
