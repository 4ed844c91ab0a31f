/**
 * The example NATS worker: serves every route of routes.yaml (users get/list/create
 * on svc.users.<region>.*, orders get/create on svc.orders.*) over in-memory data
 * seeded from data.ts, with the worker kit.
 *
 *   node dist/examples/worker.js [nats://127.0.0.1:4222]    (or env TURNOUT_NATS_URL)
 *
 * Several copies may run at once: they share the requests in one queue group.
 * SIGTERM or SIGINT drains: no new requests, those in progress are answered, exit 0.
 */
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { loadProtos } from "../src/codec/protos.js";
import { startService } from "../src/worker/index.js";
import { repoRoot } from "./paths.js";
import { ExampleServices } from "./services.js";

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function main(): Promise<number> {
  const servers = (process.argv[2] ?? process.env.TURNOUT_NATS_URL ?? "nats://127.0.0.1:4222")
    .split(",")
    .map((server) => server.trim())
    .filter((server) => server !== "");
  const root = loadProtos([join(repoRoot(), "proto")]);
  const services = new ExampleServices(root);

  const nc = await connect({
    servers,
    name: "turnout-example-worker",
    noAsyncTraces: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
  });
  // One instance of each service, with all its endpoints, in `$SRV` discovery.
  const workers = services.services().map(({ service, endpoints }) =>
    startService({
      nc,
      root,
      service,
      endpoints,
      onError: (err, ctx) =>
        console.error(`worker: ${ctx.subject} (request ${ctx.requestId ?? "-"}) failed:`, err),
    }),
  );
  await nc.flush(); // the subscriptions are registered on the server: requests can come
  log("worker ready on svc.users.*, svc.orders.*");

  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === "disconnect") log(`worker: disconnected from ${status.server}`);
      if (status.type === "reconnect") log(`worker: reconnected to ${status.server}`);
    }
  })();

  const signal = await Promise.race([
    new Promise<string>((done) => process.once("SIGTERM", () => done("SIGTERM"))),
    new Promise<string>((done) => process.once("SIGINT", () => done("SIGINT"))),
    nc.closed().then((err) => `the NATS connection closed (${err?.message ?? "no error"})`),
  ]);
  if (!signal.startsWith("SIG")) {
    console.error(`worker: ${signal}`);
    return 1;
  }
  log(`worker: ${signal} received, draining`);
  await Promise.all(workers.map((worker) => worker.stop()));
  if (!nc.isClosed()) await nc.drain();
  log("worker: drained, bye");
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`worker: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  },
);
