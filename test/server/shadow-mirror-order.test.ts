/**
 * A NATS mirror of a legacy-served request does its work (JSON parse and
 * protobuf encode, milliseconds for a large body) only once the legacy
 * forward is sent and answered, so it adds nothing to the client's wait; and
 * a legacy mirror of a NATS-served request is dispatched only once the
 * client's answer is written (the dispatch costs about 110 µs).
 */
import { ServerResponse } from "node:http";
import t from "tap";
import { LegacyUpstreams } from "../../src/backends/legacy/upstreams.js";
import { startWorker } from "../../src/worker/index.js";
import { sendJson, startLegacyServer } from "../helpers/legacy-server.js";
import { usersCreateRoute, usersGetRoute } from "../helpers/route-yaml.js";
import { usersGetWorker } from "../helpers/routes-and-workers.js";
import { waitUntil } from "../helpers/serve-process.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

/** The primary's answer, held by legacy until the test lets it go. */
let held: ServerResponse | undefined;
const legacy = await startLegacyServer((_request, res) => {
  // GETs are the NATS-served route's mirrors: answered at once.
  if (_request.method === "GET") sendJson(res, 200, { id: "u1", region: "eu" });
  else held = res;
});
t.teardown(() => legacy.close());

const ROUTES =
  usersCreateRoute({
    legacy: "users",
    shadowWrites: "true",
    cutover: "{ nats: 0, shadow: 100 }",
  }) + usersGetRoute({ legacy: "users", cutover: "{ nats: 100, shadow: 100 }" });
const stack = await startStack(t, writeRoutes(ROUTES, `legacy:\n  users: ${legacy.url}\n`));
const worker = startWorker({
  nc: stack.nc,
  root: stack.root,
  subject: "svc.users.*.create",
  requestType: "users.v1.CreateUserRequest",
  responseType: "users.v1.User",
  handle: () => ({ id: "u1" }),
});
t.teardown(() => worker.stop());
await stack.nc.flush();

/** What the gateway did, in order: the legacy forward, the NATS mirror's request. */
const events: string[] = [];
const forward = LegacyUpstreams.prototype.forward;
LegacyUpstreams.prototype.forward = function (this: LegacyUpstreams, ...args: unknown[]) {
  events.push("legacy forward");
  return Reflect.apply(forward, this, args);
} as typeof forward;
t.teardown(() => {
  LegacyUpstreams.prototype.forward = forward;
});
// The NATS request is made in the same turn as the parse and encode before it.
const nats = stack.gateway.nats;
const natsRequest = nats.request.bind(nats);
nats.request = (...args) => {
  events.push("nats mirror");
  return natsRequest(...args);
};

t.test(
  "a NATS mirror's work starts only after the legacy forward was sent and answered",
  async (t) => {
    const tags = Array.from({ length: 2000 }, (_, i) => `tag-${i}`);
    const answered = fetch(`${stack.gateway.url}/v1/regions/eu/users`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id: "u1", tags }),
    });
    await waitUntil(() => held !== undefined, 5000);
    t.same(events, ["legacy forward"], "no mirror work while legacy has not answered");

    sendJson(held!, 201, { id: "u1" });
    const res = await answered;
    t.equal(res.status, 201, "legacy served it");
    await res.arrayBuffer();
    await waitUntil(() => stack.gateway.mirrors.inFlight === 0, 5000);
    t.same(events, ["legacy forward", "nats mirror"]);
  },
);

t.test(
  "a legacy mirror is dispatched only after the NATS answer is written to the client",
  async (t) => {
    const getWorker = usersGetWorker(stack.nc, stack.root, () => ({ id: "u1", region: "eu" }));
    t.teardown(() => getWorker.stop());
    await stack.nc.flush();
    const order: string[] = [];
    const mirror = LegacyUpstreams.prototype.mirror;
    LegacyUpstreams.prototype.mirror = function (this: LegacyUpstreams, ...args: unknown[]) {
      order.push("legacy mirror");
      return Reflect.apply(mirror, this, args);
    } as typeof mirror;
    // The gateway's answers only: the legacy server in this process answers too.
    const gatewayPort = Number(new URL(stack.gateway.url).port);
    const end = ServerResponse.prototype.end;
    ServerResponse.prototype.end = function (this: ServerResponse, ...args: unknown[]) {
      if (this.socket?.localPort === gatewayPort) order.push("client answer");
      return Reflect.apply(end, this, args);
    } as typeof end;
    t.teardown(() => {
      LegacyUpstreams.prototype.mirror = mirror;
      ServerResponse.prototype.end = end;
    });

    const res = await fetch(`${stack.gateway.url}/v1/regions/eu/users/u1`);
    t.equal(res.status, 200);
    await res.arrayBuffer();
    await waitUntil(() => order.length === 2 && stack.gateway.mirrors.inFlight === 0, 5000);
    t.same(order, ["client answer", "legacy mirror"]);
  },
);
