/**
 * Publish routes under shadow: a refused Idempotency-Key reuse is not sent to
 * legacy (it would run there as a new write), and a mirror into the stream is
 * not counted as client payload.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import t from "tap";
import { sendJson, startLegacyServer } from "../helpers/legacy-server.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

const legacy = await startLegacyServer((_request, res) =>
  sendJson(res, 202, { stream: "LEGACY", seq: 1, duplicate: false }),
);
t.teardown(() => legacy.close());

const publishRoute = (name: string, path: string, nats: number) => `  - name: ${name}
    method: POST
    path: ${path}
    subject: events.users.{region}.${name}
    request: users.v1.CreateUserRequest
    response: users.v1.User
    body: user
    mode: publish
    legacy: users
    shadowWrites: true
    cutover: { nats: ${nats}, shadow: 100 }
`;
const ROUTES =
  publishRoute("created", "/v1/regions/:region/users", 100) +
  publishRoute("imported", "/v1/imports/:region/users", 0);
const stack = await startStack(t, writeRoutes(ROUTES, `legacy:\n  users: ${legacy.url}\n`), {
  jetstream: true,
});
const jsm = await jetstreamManager(stack.nc);
await jsm.streams.add({ name: "USER_EVENTS", subjects: ["events.users.>"] });

const post = (path: string, body: unknown, key: string) =>
  fetch(`${stack.gateway.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", "idempotency-key": key },
    body: JSON.stringify(body),
  });

async function settled(): Promise<void> {
  const until = Date.now() + 5000;
  while (stack.gateway.mirrors.inFlight > 0 && Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

t.test("an Idempotency-Key reuse refused on NATS is not mirrored to legacy", async (t) => {
  t.equal((await post("/v1/regions/eu/users", { id: "u-1" }, "k-1")).status, 202);
  await settled();
  const seen = legacy.seen.length;
  t.equal(seen, 1, "the stored write was mirrored, as shadowWrites asks");
  const reused = await post("/v1/regions/eu/users", { id: "u-2" }, "k-1");
  t.equal(reused.status, 422);
  await settled();
  t.equal(legacy.seen.length, seen, "legacy never got the refused write");
});

t.test("a publish mirrored from a legacy primary is not counted as client payload", async (t) => {
  const counted = async () => {
    const text = await stack.gateway.metrics.registry.metrics();
    const line =
      /^turnout_payload_bytes_count\{route="imported",direction="request",format="protobuf"\} (\d+)$/m;
    return Number(line.exec(text)?.[1] ?? 0);
  };
  const before = await counted();
  const stored = (await jsm.streams.info("USER_EVENTS")).state.messages;
  t.equal((await post("/v1/imports/eu/users", { id: "u-3" }, "k-3")).status, 202);
  await settled();
  t.equal(
    (await jsm.streams.info("USER_EVENTS")).state.messages,
    stored + 1,
    "the mirror was published",
  );
  t.equal(await counted(), before, "and not counted as the client's payload");
});
