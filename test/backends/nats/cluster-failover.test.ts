import { connect } from "@nats-io/transport-node";
import t from "tap";
import { loadConfigAndProtos } from "../../../src/config/load.js";
import type { NatsServer } from "../../../src/devtools/nats-server.js";
import { startNatsCluster } from "../../helpers/nats-cluster.js";
import { ordersGetRoute } from "../../helpers/route-yaml.js";
import { startLoopbackGateway, writeRoutes } from "../../helpers/stack.js";

const ROUTE = ordersGetRoute({ timeout: "1s", retry: "{ attempts: 5, backoff: 50ms }" });

const CLIENTS = 10;
const DURATION_MS = 8000;

t.test(
  "under steady load, losing two of three cluster nodes fails no request: the gateway and the worker fail over",
  async (t) => {
    const cluster = await startNatsCluster(3);
    const stops: Array<() => unknown> = [() => cluster.stop()];
    t.teardown(async () => {
      for (const stop of stops.reverse()) await stop();
    });
    const { config, root } = loadConfigAndProtos(writeRoutes(ROUTE), {
      natsUrl: cluster.urls.join(","),
    });
    t.same(config.nats.servers, cluster.urls, "the gateway knows all three servers");

    const gateway = await startLoopbackGateway({ config, root });
    stops.push(() => gateway.close());
    await gateway.connected;
    /** The node the gateway is connected to now. */
    const gatewayNode = (): NatsServer | undefined => {
      const { state, server } = gateway.natsStatus.snapshot();
      if (state !== "connected") return undefined;
      return cluster.nodes.find((n) => server?.endsWith(`:${n.port}`));
    };
    // "Node 1" is the one the gateway picked (nats.js shuffles the list).
    const n1 = gatewayNode();
    if (n1 === undefined)
      throw new Error(`gateway not on a cluster node: ${gateway.natsStatus.describe()}`);

    // The worker starts on node 1 too, and moves on in list order when it goes.
    const workerUrls = [n1.url, ...cluster.urls.filter((u) => u !== n1.url)];
    const worker = await connect({
      servers: workerUrls,
      noRandomize: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 50,
      reconnectJitter: 20,
      name: "orders-worker",
    });
    stops.push(() => worker.close());
    const getType = root.lookupType("orders.v1.GetOrderRequest");
    const orderType = root.lookupType("orders.v1.Order");
    worker.subscribe("svc.orders.get", {
      callback: (_err, msg) => {
        const { id } = getType.decode(msg.data) as unknown as { id: string };
        msg.respond(orderType.encode(orderType.fromObject({ id, status: "PAID" })).finish());
      },
    });
    await worker.flush();
    const workerServers = [worker.getServer()];
    (async () => {
      for await (const s of worker.status()) {
        if (s.type === "reconnect") workerServers.push(worker.getServer());
      }
    })().catch(() => undefined);
    const gatewayServers = [gateway.natsStatus.snapshot().server];
    (async () => {
      while (gatewayServers.length < 10 && !worker.isClosed()) {
        const { state, server } = gateway.natsStatus.snapshot();
        const last = gatewayServers[gatewayServers.length - 1];
        if (state === "connected" && server !== last) gatewayServers.push(server);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })().catch(() => undefined);

    // Warm up: the route's subscription interest has reached every node.
    const warm = await fetch(`${gateway.url}/v1/orders/o-1`);
    t.equal(warm.status, 200, "warm-up request");
    await warm.arrayBuffer();

    const statuses = new Map<string, number>();
    const failures: string[] = [];
    let made = 0;
    const end = Date.now() + DURATION_MS;
    const client = async (c: number) => {
      let i = 0;
      while (Date.now() < end) {
        const id = `o-${c}-${i++}`;
        made++;
        try {
          const res = await fetch(`${gateway.url}/v1/orders/${id}`);
          const body = await res.text();
          statuses.set(String(res.status), (statuses.get(String(res.status)) ?? 0) + 1);
          if (res.status !== 200 || !body.includes(id)) {
            failures.push(`${res.status} ${body.slice(0, 200)}`);
          }
        } catch (err) {
          statuses.set("fetch-error", (statuses.get("fetch-error") ?? 0) + 1);
          failures.push(`fetch error: ${String(err)}`);
        }
      }
    };
    // "Node 2" is the one the gateway moved to (or, if it is between nodes, the worker's).
    let n2: NatsServer | undefined;
    const kills = [
      setTimeout(() => n1.process.kill("SIGKILL"), 2000),
      setTimeout(() => {
        n2 =
          gatewayNode() ??
          cluster.nodes.find((n) => n.process.exitCode === null && n.process.signalCode === null);
        n2?.process.kill("SIGKILL");
      }, 4000),
    ];
    t.teardown(() => kills.forEach(clearTimeout));
    const started = Date.now();
    await Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));
    const elapsed = Date.now() - started;

    t.equal(n1.process.signalCode, "SIGKILL", "node 1 was killed");
    t.equal(n2?.process.signalCode, "SIGKILL", "node 2 was killed");
    const n3 = cluster.nodes.find((n) => n !== n1 && n !== n2);
    t.comment(
      `${made} requests in ${elapsed} ms by ${CLIENTS} clients; statuses ${JSON.stringify(Object.fromEntries(statuses))}`,
    );
    t.comment(`gateway servers: ${gatewayServers.join(" -> ")}`);
    t.comment(`worker servers: ${workerServers.join(" -> ")}`);
    t.ok(made > 0, `${made} requests made`);
    t.same(failures.slice(0, 20), [], `no failed request (of ${made})`);
    t.equal(statuses.get("200"), made, "every answer was 200");
    const onN3 = `127.0.0.1:${n3?.port}`;
    t.equal(gateway.natsStatus.snapshot().server, onN3, "the gateway ended on node 3");
    t.equal(worker.getServer(), onN3, "the worker ended on node 3");
  },
);
