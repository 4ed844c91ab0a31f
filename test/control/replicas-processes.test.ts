/**
 * Two gateway processes (`turnout serve`, as operators run them) on one
 * nats-server with JetStream: a cutover change made through one replica's admin
 * API reaches the other within a second (its admin API and its /metrics), and a
 * restarted replica serves the live value, not its routes.yaml's.
 */
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import t, { type Test } from "tap";
import { freePorts, startNatsServer } from "../../src/devtools/nats-server.js";
import { call, cutoverRoutes, TOKEN, within } from "../helpers/cutover-fixture.js";
import { spawnServe } from "../helpers/serve-process.js";

const READY_WITHIN_MS = 20_000;

interface Replica {
  readonly name: string;
  readonly process: ChildProcess;
  readonly adminUrl: string;
  readonly output: { text: string };
}

function spawnReplica(
  t: Test,
  name: string,
  routes: string,
  natsUrl: string,
  port: number,
  adminPort: number,
): Replica {
  const { gateway: child, output } = spawnServe(
    t,
    [
      "--config",
      routes,
      "--nats-url",
      natsUrl,
      "--port",
      String(port),
      "--admin-port",
      String(adminPort),
    ],
    "warn",
    { TURNOUT_ADMIN_TOKEN: TOKEN },
  );
  return { name, process: child, adminUrl: `http://127.0.0.1:${adminPort}`, output };
}

async function readyz(replica: Replica): Promise<number> {
  try {
    const res = await fetch(`${replica.adminUrl}/readyz`, { signal: AbortSignal.timeout(1000) });
    await res.text();
    return res.status;
  } catch {
    return 0;
  }
}

async function waitReady(t: Test, replica: Replica): Promise<boolean> {
  const ready = await within(READY_WITHIN_MS, async () => (await readyz(replica)) === 200);
  t.ok(ready, `${replica.name}'s /readyz is 200`, { output: replica.output.text });
  return ready;
}

interface RouteRow {
  name: string;
  nats: number;
  shadow: number;
  source: string;
  reason?: string;
}

async function routeOf(replica: Replica, route: string): Promise<RouteRow | undefined> {
  try {
    const answer = await call(`${replica.adminUrl}/admin/routes`);
    const rows = (answer.body.routes ?? []) as RouteRow[];
    return rows.find((row) => row.name === route);
  } catch {
    return undefined;
  }
}

/** The `turnout_cutover_percent{route,kind}` sample, or undefined when absent. */
async function cutoverGauge(
  replica: Replica,
  route: string,
  kind: "nats" | "shadow",
): Promise<number | undefined> {
  try {
    const res = await fetch(`${replica.adminUrl}/metrics`, { signal: AbortSignal.timeout(1000) });
    for (const line of (await res.text()).split("\n")) {
      if (!line.startsWith("turnout_cutover_percent{")) continue;
      if (!line.includes(`route="${route}"`) || !line.includes(`kind="${kind}"`)) continue;
      return Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  } catch {
    // not answering yet
  }
  return undefined;
}

t.test(
  "a cutover set through one gateway process reaches another within 1 s and survives its restart",
  async (t) => {
    const nats = await startNatsServer({ jetstream: true });
    t.teardown(() => {
      if (nats.process.exitCode === null && nats.process.signalCode === null) {
        nats.process.kill("SIGKILL");
      }
      return nats.stop();
    });
    const routes = cutoverRoutes(); // users.get starts at nats 10 in the file
    const [portA, adminA, portB, adminB] = await freePorts(4);
    const a = spawnReplica(t, "replica A", routes, nats.url, portA!, adminA!);
    let b = spawnReplica(t, "replica B", routes, nats.url, portB!, adminB!);
    if (!(await waitReady(t, a)) || !(await waitReady(t, b))) return;

    const before = await routeOf(b, "users.get");
    t.match(before, { nats: 10, source: "live" }, "B starts on the seeded value");

    const put = await call(`${a.adminUrl}/admin/routes/users.get/cutover`, {
      method: "PUT",
      body: JSON.stringify({ nats: 37.5, shadow: 0, reason: "two-process test" }),
    });
    t.equal(put.status, 200, "A accepts the change", { body: put.body });
    const changedAt = Date.now();

    const seen = await within(1000, async () => (await routeOf(b, "users.get"))?.nats === 37.5);
    const gaugeSeen = await within(
      Math.max(0, 1000 - (Date.now() - changedAt)),
      async () => (await cutoverGauge(b, "users.get", "nats")) === 37.5,
    );
    t.ok(seen, `B's GET /admin/routes shows nats 37.5 within 1 s`, {
      last: await routeOf(b, "users.get"),
    });
    t.ok(gaugeSeen, `B's turnout_cutover_percent{kind="nats"} is 37.5 within 1 s`, {
      last: await cutoverGauge(b, "users.get", "nats"),
    });
    t.match(await routeOf(b, "users.get"), {
      nats: 37.5,
      source: "live",
      reason: "two-process test",
    });

    // B stops (drains) and comes back on the same routes.yaml, which still says 10.
    const exited = once(b.process, "exit");
    b.process.kill("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const stopped = await Promise.race([
      exited.then(() => true),
      new Promise<false>((r) => {
        timer = setTimeout(() => r(false), 15_000);
      }),
    ]);
    clearTimeout(timer);
    t.ok(stopped, "B exits on SIGTERM", { output: b.output.text });
    if (!stopped) return;
    t.equal(b.process.exitCode, 0, "B exits 0 after its drain", { output: b.output.text });

    b = spawnReplica(t, "replica B (restarted)", routes, nats.url, portB!, adminB!);
    if (!(await waitReady(t, b))) return;
    t.match(
      await routeOf(b, "users.get"),
      { nats: 37.5, source: "live", reason: "two-process test" },
      "the restarted B reports the live value, not the file's 10",
    );
    t.equal(await cutoverGauge(b, "users.get", "nats"), 37.5, "and its gauge says so");
    const list = await call(`${b.adminUrl}/admin/routes`);
    t.equal(list.body.cutover, "live", "its cutover state is live");
  },
);
