/**
 * A nats-server cluster on loopback: every node routes to every other, and the
 * helper waits until a request on any node reaches a subscriber on any other.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { freePorts, type NatsServer, startNatsServer } from "../../src/devtools/nats-server.js";

export interface NatsCluster {
  readonly nodes: readonly NatsServer[];
  /** Every node's client URL. */
  readonly urls: readonly string[];
  /** Stops every node still running. */
  stop(): Promise<void>;
}

export async function startNatsCluster(size = 3, name = "T"): Promise<NatsCluster> {
  const ports = await freePorts(2 * size);
  const clientPorts = ports.slice(0, size);
  const clusterPorts = ports.slice(size);
  const routeUrl = (i: number) => `nats://127.0.0.1:${clusterPorts[i]}`;
  const nodes: NatsServer[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
  };
  try {
    for (let i = 0; i < size; i++) {
      const routes = clusterPorts
        .map((_, j) => j)
        .filter((j) => j !== i)
        .map(routeUrl);
      nodes.push(
        await startNatsServer({
          port: clientPorts[i],
          args: [
            "--cluster_name",
            name,
            "--cluster",
            routeUrl(i),
            "--routes",
            routes.join(","),
            "-n",
            `${name}-${i + 1}`,
          ],
        }),
      );
    }
    await waitForRoutes(nodes.map((n) => n.url));
  } catch (err) {
    await stop();
    throw err;
  }
  return { nodes, urls: nodes.map((n) => n.url), stop };
}

/** Until, for every pair of nodes, a request sent on one is answered via the other. */
async function waitForRoutes(urls: string[], ms = 10_000): Promise<void> {
  const conns: NatsConnection[] = [];
  try {
    for (const url of urls) conns.push(await connect({ servers: url }));
    conns.forEach((nc, i) => {
      nc.subscribe(`cluster.ping.${i}`, {
        callback: (_err, msg) => {
          msg.respond("pong");
        },
      });
    });
    for (const nc of conns) await nc.flush();
    const end = Date.now() + ms;
    for (let i = 0; i < conns.length; i++) {
      for (let j = 0; j < conns.length; j++) {
        if (i === j) continue;
        for (;;) {
          try {
            await conns[j]?.request(`cluster.ping.${i}`, "ping", { timeout: 200 });
            break;
          } catch (err) {
            if (Date.now() > end) throw new Error(`cluster routes not formed: ${String(err)}`);
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        }
      }
    }
  } finally {
    await Promise.all(conns.map((nc) => nc.close()));
  }
}
