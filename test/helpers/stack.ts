/**
 * A whole system for an end-to-end test: a real nats-server, the gateway
 * listening on free loopback ports, and a NATS connection for the test's own
 * workers and spies. Everything is torn down with the test.
 */

import { writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type protobuf from "protobufjs";
import { loadConfigAndProtos } from "../../src/config/load.js";
import type { GatewayConfig } from "../../src/config/types.js";
import { type NatsServer, startNatsServer } from "../../src/devtools/nats-server.js";
import type { TrustProxy } from "../../src/server/gateway.js";
import type { ListenerOptions } from "../../src/server/listener-options.js";
import { type RunningGateway, type StartOptions, startGateway } from "../../src/server/start.js";
import { tempDir } from "./temp-dir.js";

export const PROTO_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "../../proto");

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface Stack {
  readonly server: NatsServer;
  readonly gateway: RunningGateway;
  readonly config: GatewayConfig;
  readonly root: protobuf.Root;
  /** A client connection for workers and spies in the test. */
  readonly nc: NatsConnection;
}

/** Writes a routes.yaml whose `routes:` section is `routesYaml` (indented list items). */
export function writeRoutes(routesYaml: string, extra = ""): string {
  const dir = tempDir("turnout-routes");
  const file = join(dir, "routes.yaml");
  writeFileSync(
    file,
    `version: 1\nprotos: [${JSON.stringify(PROTO_DIR)}]\nnats:\n  servers: [nats://127.0.0.1:4222]\n${extra}routes:\n${routesYaml}`,
  );
  return file;
}

/**
 * Free ports, so test files can run side by side; a short reconnect wait, so a
 * test that restarts NATS is not held up by the default backoff.
 */
export function startLoopbackGateway(
  options: Omit<StartOptions, "host" | "port" | "adminPort" | "reconnectTimeWaitMs">,
): Promise<RunningGateway> {
  return startGateway({
    ...options,
    host: "127.0.0.1",
    port: 0,
    adminPort: 0,
    reconnectTimeWaitMs: 100,
  });
}

export async function startStack(
  t: Teardown,
  routesFile: string,
  options: {
    jetstream?: boolean;
    adminToken?: string;
    /** Fastify/pino logger options (e.g. with a `stream` to read the lines); none by default. */
    logger?: { level: string };
    /** HTTPS and the slow-client request timeout for both listeners. */
    listener?: ListenerOptions;
    /** Proxies whose X-Forwarded-* the gateway believes. */
    trustProxy?: TrustProxy;
  } = {},
): Promise<Stack> {
  const server = await startNatsServer({ jetstream: options.jetstream ?? false });
  const stops: Array<() => unknown> = [() => server.stop()];
  // Last started, first stopped: the gateway drains while its server is still up.
  t.teardown(async () => {
    for (const stop of stops.reverse()) await stop();
  });
  const { config, root } = loadConfigAndProtos(routesFile, { natsUrl: server.url });
  const gateway = await startLoopbackGateway({
    config,
    root,
    adminToken: options.adminToken,
    logger: options.logger,
    listener: options.listener,
    trustProxy: options.trustProxy,
  });
  stops.push(() => gateway.close());
  await gateway.connected;
  // Routes with two sides answer 503 until the live cutover state (or its absence) is known.
  await gateway.cutoverStore.settled;
  const nc = await connect({ servers: server.url });
  stops.push(() => nc.close());
  return { server, gateway, config, root, nc };
}
