/**
 * Scenario "nats-floor": the least an HTTP -> NATS gateway can do in Node, on
 * the gateway's own transport. Fastify with its default JSON parser, protobufjs's
 * classic (coercing) `fromObject`/`toObject`, and Turnout's NATS requester (one
 * inbox, one timer, coalesced writes); none of the gateway's production work:
 * no strict ProtoJSON, route table, breaker, retries, metrics, request ids,
 * trace context, headers to the worker or problem+json. It answers the same
 * JSON as the gateway for the bench record, so its ratio to fastify-echo is
 * the most a gateway route can reach on this machine, and the gateway's ratio
 * to it is what the production work costs.
 *
 *   node dist/bench/floor-gateway.js --nats-url nats://127.0.0.1:4222 --port 8080
 */
import { parseArgs } from "node:util";
import { connect } from "@nats-io/transport-node";
import Fastify from "fastify";
import { NatsRequester } from "../src/backends/nats/requester.js";
import { loadProtos } from "../src/codec/protos.js";
import { SUBJECT } from "./lib/payload.js";
import { repoRoot } from "./lib/processes.js";

const { values } = parseArgs({
  options: {
    "nats-url": { type: "string" },
    port: { type: "string" },
  },
});
const port = Number(values.port);
if (values["nats-url"] === undefined || !Number.isInteger(port) || port <= 0 || port > 65535) {
  process.stderr.write("floor-gateway: --nats-url and --port <1-65535> are required\n");
  process.exit(2);
}

const root = loadProtos([`${repoRoot()}/proto`]);
const CreateUserRequest = root.lookupType("users.v1.CreateUserRequest");
const User = root.lookupType("users.v1.User");
const TO_OBJECT = { longs: String, enums: String, defaults: true };

interface Timestamp {
  seconds: string;
  nanos: number;
}

// Classic protobufjs reads and prints a Timestamp as an object: the RFC 3339
// text of the JSON mapping is converted by hand, as a naive gateway must.
function timestampOf(text: string): { seconds: number; nanos: number } {
  const ms = Date.parse(text);
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}

function rfc3339(ts: Timestamp): string {
  return new Date(Number(ts.seconds) * 1000 + ts.nanos / 1e6).toISOString().replace(".000Z", "Z");
}

const nc = await connect({ servers: values["nats-url"], noAsyncTraces: true });
const requester = new NatsRequester(nc);
const app = Fastify({ logger: false });

app.post<{ Params: { region: string }; Body: Record<string, unknown> }>(
  "/v1/regions/:region/users",
  async (request, reply) => {
    const user = request.body;
    if (typeof user.created_at === "string") user.created_at = timestampOf(user.created_at);
    const message = CreateUserRequest.fromObject({ region: request.params.region, user });
    const payload = CreateUserRequest.encode(message).finish();
    const answer = await requester.request(SUBJECT, payload, undefined, 2000);
    const out = User.toObject(User.decode(answer.data), TO_OBJECT);
    if (out.created_at !== null) out.created_at = rfc3339(out.created_at as Timestamp);
    reply.header("content-type", "application/json; charset=utf-8");
    return JSON.stringify(out);
  },
);
await app.listen({ port, host: "127.0.0.1" });
process.stdout.write("ready\n");

async function stop(): Promise<void> {
  const timer = setTimeout(() => process.exit(0), 2000);
  await app.close().catch(() => undefined);
  await requester.drain().catch(() => undefined);
  await nc.close().catch(() => undefined);
  clearTimeout(timer);
  process.exit(0);
}
process.once("SIGTERM", () => void stop());
process.once("SIGINT", () => void stop());
