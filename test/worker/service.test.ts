import { setTimeout as sleep } from "node:timers/promises";
import { connect, createInbox, Empty, type NatsConnection } from "@nats-io/transport-node";
import protobuf from "protobufjs";
import t, { type Test } from "tap";
import { type NatsServer, startNatsServer } from "../../src/devtools/nats-server.js";
import { ServiceError, startService, startWorker, type Worker } from "../../src/worker/index.js";

const root = protobuf.parse(
  `syntax = "proto3";
  package test.v1;
  message GetUserRequest { string id = 1; }
  message DeleteUserRequest { string id = 1; }
  message User { string id = 1; }`,
  { keepCase: true },
).root;
const GetUserRequest = root.lookupType("test.v1.GetUserRequest");
const DeleteUserRequest = root.lookupType("test.v1.DeleteUserRequest");

let server: NatsServer;
let nc: NatsConnection;
t.before(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url, noAsyncTraces: true });
});
t.teardown(async () => {
  await nc.close();
  await server.stop();
});

type Answer = Record<string, unknown> & { id: string; endpoints?: Record<string, unknown>[] };

/** Every answer to a discovery request within `waitMs`. */
async function discover(subject: string, waitMs = 300): Promise<Answer[]> {
  const inbox = createInbox();
  const answers: Answer[] = [];
  const sub = nc.subscribe(inbox, {
    callback: (_err, msg) => {
      // A status message (no responders) has no body.
      if (msg.data.length > 0) answers.push(msg.json<Answer>());
    },
  });
  nc.publish(subject, Empty, { reply: inbox });
  await sleep(waitMs);
  sub.unsubscribe();
  return answers;
}

function usersWorker(t: Test, subject: string, name = "users"): Worker {
  const worker = startWorker<{ id: string }>({
    nc,
    root,
    subject,
    requestType: "test.v1.GetUserRequest",
    responseType: "test.v1.User",
    service: { name, version: "1.2.0", description: "Users API" },
    handle(req) {
      if (req.id === "missing") throw new ServiceError(404, "no such\nuser");
      return { id: req.id };
    },
  });
  t.teardown(() => worker.stop());
  return worker;
}

t.test("a worker answers PING, INFO and STATS for all services, its name and its id", async (t) => {
  const worker = usersWorker(t, "t.svc.all", "all-verbs");
  await nc.flush();
  for (const verb of ["PING", "INFO", "STATS"]) {
    const type = `io.nats.micro.v1.${verb.toLowerCase()}_response`;
    for (const subject of [
      `$SRV.${verb}.all-verbs`,
      `$SRV.${verb}.all-verbs.${worker.serviceId}`,
    ]) {
      const answers = await discover(subject, 150);
      t.equal(answers.length, 1, `one answer on ${subject}`);
      t.match(answers[0], { type, name: "all-verbs", id: worker.serviceId, version: "1.2.0" });
    }
    const everyone = await discover(`$SRV.${verb}`, 150);
    t.ok(
      everyone.some((a) => a.id === worker.serviceId && a.type === type),
      `found on $SRV.${verb}`,
    );
  }
  const [info] = await discover(`$SRV.INFO.all-verbs.${worker.serviceId}`);
  t.match(info, { description: "Users API" });
  t.same(info?.endpoints, [
    { name: "GetUserRequest", subject: "t.svc.all", queue_group: "turnout-workers", metadata: {} },
  ]);
});

t.test("STATS counts requests, errors with the last one, and processing time", async (t) => {
  const worker = usersWorker(t, "t.svc.stats", "stats");
  await nc.flush();
  const ask = (id: string) => nc.request("t.svc.stats", GetUserRequest.encode({ id }).finish());
  await ask("u-1");
  await ask("u-2");
  const failed = await ask("missing");
  t.equal(failed.headers?.get("Nats-Service-Error-Code"), "404");

  const [stats] = await discover(`$SRV.STATS.stats.${worker.serviceId}`);
  const started = Date.parse(String(stats?.started));
  t.ok(Date.now() - started < 60_000 && Date.now() >= started, "started is an RFC 3339 time");
  const [endpoint] = stats?.endpoints ?? [];
  t.match(endpoint, {
    name: "GetUserRequest",
    subject: "t.svc.stats",
    queue_group: "turnout-workers",
    num_requests: 3,
    num_errors: 1,
    last_error: "404:no such user",
  });
  const processing = Number(endpoint?.processing_time);
  t.ok(processing > 0, `processing_time ${processing} ns`);
  t.equal(endpoint?.average_processing_time, Math.round(processing / 3));
});

t.test("each instance of a service answers a PING by name with its own id", async (t) => {
  const a = usersWorker(t, "t.svc.two", "twice");
  const b = usersWorker(t, "t.svc.two", "twice");
  await nc.flush();
  const ids = (await discover("$SRV.PING.twice")).map((answer) => answer.id).sort();
  t.same(ids, [a.serviceId, b.serviceId].sort());
  t.not(a.serviceId, b.serviceId);
});

t.test("a stopped worker leaves discovery", async (t) => {
  const worker = usersWorker(t, "t.svc.gone", "gone");
  await nc.flush();
  t.equal((await discover(`$SRV.PING.gone.${worker.serviceId}`)).length, 1);
  await worker.stop();
  await nc.flush();
  t.equal((await discover(`$SRV.PING.gone.${worker.serviceId}`)).length, 0);
});

t.test("a service name or version the protocol refuses is an error naming it", async (t) => {
  const start = (name: string, version: string) => () =>
    startWorker({
      nc,
      root,
      subject: "t.svc.bad",
      requestType: "test.v1.GetUserRequest",
      responseType: "test.v1.User",
      service: { name, version },
      handle: () => ({}),
    });
  t.throws(start("user service", "1.0.0"), {
    code: "TURNOUT_ERR_CONFIG",
    message: /name "user service"/,
  });
  t.throws(start("users", "1.0"), { code: "TURNOUT_ERR_CONFIG", message: /version "1.0"/ });
  const answered = await nc.request("t.svc.bad", Empty, { timeout: 500 }).then(
    () => true,
    () => false,
  );
  t.notOk(answered, "nothing subscribed to the subject");
});

/** A users service with two endpoints: get (u-* ids only) and delete. */
function usersService(t: Test, name: string, prefix: string): Worker {
  const service = startService({
    nc,
    root,
    service: { name, version: "2.0.0" },
    endpoints: [
      {
        subject: `${prefix}.get`,
        requestType: "test.v1.GetUserRequest",
        responseType: "test.v1.User",
        handle(req: { id: string }) {
          if (!req.id.startsWith("u-")) throw new ServiceError(400, "bad id");
          return { id: req.id };
        },
      },
      {
        subject: `${prefix}.delete`,
        requestType: "test.v1.DeleteUserRequest",
        responseType: "test.v1.User",
        endpoint: "remove",
        async handle(req: { id: string }) {
          await sleep(20);
          return { id: req.id };
        },
      },
    ],
  });
  t.teardown(() => service.stop());
  return service;
}

t.test(
  "a service with several endpoints is one instance: INFO lists them, STATS counts each apart",
  async (t) => {
    const service = usersService(t, "multi", "t.multi");
    await nc.flush();
    const get = (id: string) => nc.request("t.multi.get", GetUserRequest.encode({ id }).finish());
    const remove = (id: string) =>
      nc.request("t.multi.delete", DeleteUserRequest.encode({ id }).finish());
    t.equal(GetUserRequest.decode((await get("u-1")).data).toJSON().id, "u-1");
    t.equal((await get("x")).headers?.get("Nats-Service-Error-Code"), "400");
    t.equal(DeleteUserRequest.decode((await remove("u-9")).data).toJSON().id, "u-9");

    t.same(
      (await discover("$SRV.PING.multi")).map((answer) => answer.id),
      [service.serviceId],
      "one instance answers for the service",
    );
    const [info] = await discover(`$SRV.INFO.multi.${service.serviceId}`);
    t.same(info?.endpoints, [
      {
        name: "GetUserRequest",
        subject: "t.multi.get",
        queue_group: "turnout-workers",
        metadata: {},
      },
      { name: "remove", subject: "t.multi.delete", queue_group: "turnout-workers", metadata: {} },
    ]);
    const [stats] = await discover(`$SRV.STATS.multi.${service.serviceId}`);
    t.match(stats?.endpoints, [
      { name: "GetUserRequest", num_requests: 2, num_errors: 1, last_error: "400:bad id" },
      { name: "remove", num_requests: 1, num_errors: 0, last_error: "" },
    ]);
  },
);

t.test(
  "stopping a service answers every endpoint's requests in progress, then leaves",
  async (t) => {
    const service = usersService(t, "multi-stop", "t.mstop");
    await nc.flush();
    const inFlight = nc.request("t.mstop.delete", DeleteUserRequest.encode({ id: "u-5" }).finish());
    await sleep(5); // the delete handler is running (it takes 20 ms)
    await service.stop();
    t.equal(DeleteUserRequest.decode((await inFlight).data).toJSON().id, "u-5");
    for (const subject of ["t.mstop.get", "t.mstop.delete"]) {
      await t.rejects(nc.request(subject, Empty, { timeout: 500 }), /no responders/i, subject);
    }
    t.same(await discover("$SRV.PING.multi-stop"), []);
  },
);

t.test(
  "a service with no endpoint, or two endpoints of one name, is refused naming it",
  async (t) => {
    const endpoint = (subject: string, name?: string) => ({
      subject,
      requestType: "test.v1.GetUserRequest",
      responseType: "test.v1.User",
      handle: () => ({}),
      ...(name === undefined ? {} : { endpoint: name }),
    });
    const start = (endpoints: ReturnType<typeof endpoint>[]) => () =>
      startService({ nc, root, service: { name: "refused", version: "1.0.0" }, endpoints });
    t.throws(start([]), { code: "TURNOUT_ERR_CONFIG", message: /refused has no endpoint/ });
    t.throws(start([endpoint("t.dup.a"), endpoint("t.dup.b")]), {
      code: "TURNOUT_ERR_CONFIG",
      message: /endpoint "GetUserRequest" is named twice/,
    });
    t.throws(start([endpoint("t.dup.a", "get"), endpoint("t.dup.b", "get")]), {
      code: "TURNOUT_ERR_CONFIG",
      message: /endpoint "get" is named twice/,
    });
    for (const subject of ["t.dup.a", "t.dup.b"]) {
      await t.rejects(nc.request(subject, Empty, { timeout: 500 }), /no responders/i, subject);
    }
    t.same(await discover("$SRV.PING.refused"), []);
  },
);

t.test(
  "an endpoint subject that is no NATS subject is refused naming it, before any endpoint serves",
  async (t) => {
    const endpoint = (subject: string, name: string) => ({
      subject,
      endpoint: name,
      requestType: "test.v1.GetUserRequest",
      responseType: "test.v1.User",
      handle: () => ({}),
    });
    for (const bad of ["t.badsub bad", "t..badsub", "t.badsub.", "t.bad\u0000sub", "t.>.badsub"]) {
      t.throws(
        () =>
          startService({
            nc,
            root,
            service: { name: "badsub", version: "1.0.0" },
            endpoints: [endpoint("t.badsub.ok", "first"), endpoint(bad, "second")],
          }),
        {
          code: "TURNOUT_ERR_CONFIG",
          message: `endpoint second: subject ${JSON.stringify(bad)} is not a NATS subject`,
        },
        JSON.stringify(bad),
      );
    }
    await t.rejects(nc.request("t.badsub.ok", Empty, { timeout: 500 }), /no responders/i);
    t.same(await discover("$SRV.PING.badsub"), [], "not registered either");
    const noQueue = startService({
      nc,
      root,
      queue: "",
      service: { name: "noqueue", version: "1.0.0" },
      endpoints: [endpoint("t.noqueue", "first")],
    });
    t.ok(noQueue.serviceId, 'queue "" (no queue group) is still taken');
    await noQueue.stop();
  },
);
