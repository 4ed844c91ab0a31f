/**
 * Scenario "nats-raw" load client: request/reply from Node straight to the bench
 * worker, `--connections` requests in flight, for `--duration` seconds, no HTTP.
 * The reference for what the NATS hop alone costs. Runs in its own process (as
 * wrk does for HTTP) and prints one JSON LoadResult line at the end.
 *
 *   node dist/bench/lib/nats-client.js --nats-url URL --duration 10 --connections 50
 */
import { parseArgs } from "node:util";
import { connect } from "@nats-io/transport-node";
import { findMessage, loadProtos } from "../../src/codec/protos.js";
import type { LoadResult } from "./load.js";
import { createUserRequestObject, SUBJECT, USER_RECORD } from "./payload.js";
import { repoRoot } from "./processes.js";
import { percentile } from "./stats.js";

const { values } = parseArgs({
  options: {
    "nats-url": { type: "string" },
    subject: { type: "string", default: SUBJECT },
    duration: { type: "string", default: "10" },
    connections: { type: "string", default: "50" },
    timeout: { type: "string", default: "2000" },
  },
});
const durationMs = Number(values.duration) * 1000;
const inFlight = Number(values.connections);
const timeoutMs = Number(values.timeout);
if (values["nats-url"] === undefined || !(durationMs > 0) || !(inFlight > 0)) {
  process.stderr.write(
    "nats-client: --nats-url, --duration > 0 and --connections > 0 are required\n",
  );
  process.exit(2);
}

const root = loadProtos([`${repoRoot()}/proto`]);
const CreateUserRequest = findMessage(root, "users.v1.CreateUserRequest")!;
const User = findMessage(root, "users.v1.User")!;
const payload = CreateUserRequest.encode(
  CreateUserRequest.fromObject(createUserRequestObject()),
).finish();

const nc = await connect({
  servers: values["nats-url"],
  name: "turnout-bench-client",
  noAsyncTraces: true,
});

// One checked round trip first, so a worker that answers garbage fails the run.
const first = User.decode((await nc.request(values.subject, payload, { timeout: timeoutMs })).data);
if ((first as unknown as { email: string }).email !== USER_RECORD.email) {
  throw new Error(`unexpected reply from the worker: ${JSON.stringify(first.toJSON())}`);
}

let latencies = new Float64Array(1 << 16);
let count = 0;
let errors = 0;
let lastError = "";
const start = performance.now();
const end = start + durationMs;

async function loop(): Promise<void> {
  while (performance.now() < end) {
    const t0 = performance.now();
    try {
      await nc.request(values.subject, payload, { timeout: timeoutMs });
    } catch (err) {
      errors++;
      lastError = (err as Error).message;
      continue;
    }
    if (count === latencies.length) {
      const grown = new Float64Array(latencies.length * 2);
      grown.set(latencies);
      latencies = grown;
    }
    latencies[count++] = performance.now() - t0;
  }
}

await Promise.all(Array.from({ length: inFlight }, loop));
const elapsedS = (performance.now() - start) / 1000;
await nc.close();

const sorted = latencies.subarray(0, count).sort();
const result: LoadResult = {
  requests: count,
  durationS: elapsedS,
  rps: count / elapsedS,
  // Rounded to the microsecond, as wrk reports.
  p50Ms: Math.round(percentile(sorted, 50) * 1000) / 1000,
  p99Ms: Math.round(percentile(sorted, 99) * 1000) / 1000,
  errors,
  errorDetail: errors === 0 ? undefined : `${errors} failed requests, last: ${lastError}`,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
