/**
 * The benchmark's NATS worker, written with the worker kit (src/worker): answers
 * users.v1.CreateUserRequest with the users.v1.User it holds (id and region
 * filled in), in a queue group.
 *
 *   node dist/bench/worker.js --nats-url nats://127.0.0.1:4222 [--subject S] [--queue Q]
 *
 * Prints "ready" once its subscription is registered on the server; on
 * SIGTERM/SIGINT it finishes what it has in progress and drains (at most 2 s).
 */
import { parseArgs } from "node:util";
import { connect } from "@nats-io/transport-node";
import { loadProtos } from "../src/codec/protos.js";
import { drainOnSignals, startWorker } from "../src/worker/index.js";
import { SUBJECT } from "./lib/payload.js";
import { repoRoot } from "./lib/processes.js";

interface CreateUserRequest {
  region: string;
  user: { id: string; region: string } | null;
}

const { values } = parseArgs({
  options: {
    "nats-url": { type: "string" },
    subject: { type: "string", default: SUBJECT },
    queue: { type: "string", default: "bench-workers" },
  },
});
if (values["nats-url"] === undefined) {
  process.stderr.write("worker: --nats-url is required\n");
  process.exit(2);
}

const root = loadProtos([`${repoRoot()}/proto`]);
const nc = await connect({
  servers: values["nats-url"],
  name: "turnout-bench-worker",
  noAsyncTraces: true,
});

const worker = startWorker<CreateUserRequest, object>({
  nc,
  root,
  subject: values.subject,
  queue: values.queue,
  requestType: "users.v1.CreateUserRequest",
  responseType: "users.v1.User",
  errorType: "users.v1.Error",
  // The decoded user is answered as is, with the fields a create fills in.
  handle(request) {
    const user = request.user ?? { id: "", region: "" };
    if (user.id === "") user.id = "u-new";
    user.region = request.region;
    return user;
  },
});
await nc.flush();
process.stdout.write("ready\n");

// At most 2 s for the requests in progress: the runner waits for the exit.
const exit = () => process.exit(0);
drainOnSignals(nc, [worker], { onSignal: () => setTimeout(exit, 2000).unref() }).then(exit, exit);
