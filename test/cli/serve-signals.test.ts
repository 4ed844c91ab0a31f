/**
 * `turnout serve` drains once per process: a repeated SIGTERM/SIGINT (a second
 * Ctrl-C, a signal to the whole process group, which under --workers reaches
 * each worker directly and forwarded by the primary) is logged and ignored,
 * never Node's default exit that would cut the requests in flight.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import t, { type Test } from "tap";
import { freePort, type NatsServer } from "../../src/devtools/nats-server.js";
import { startHoldingWorker } from "../helpers/routes-and-workers.js";
import { servingUrls, usersGetServeArgs, waitUntil } from "../helpers/serve-process.js";

/** `turnout serve` in a process group of its own, as a terminal or systemd runs it. */
function spawnServeGroup(
  t: Test,
  server: NatsServer,
  ports: { port: number; adminPort: number },
  extra: string[] = [],
) {
  const gateway = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "src/cli/main.ts",
      "serve",
      "--host",
      "127.0.0.1",
      ...usersGetServeArgs(server.url, ports),
      ...extra,
    ],
    {
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
      env: { ...process.env, TURNOUT_LOG_LEVEL: "warn" },
    },
  );
  t.teardown(() => killGroup(gateway, "SIGKILL"));
  const output = { text: "" };
  gateway.stdout?.on("data", (chunk) => (output.text += chunk));
  gateway.stderr?.on("data", (chunk) => (output.text += chunk));
  return { gateway, output, exited: once(gateway, "exit") };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-(child.pid ?? 0), signal);
  } catch {
    // Already gone.
  }
}

const count = (text: string, pattern: RegExp) => text.match(pattern)?.length ?? 0;

t.test(
  "a second SIGTERM during the drain is logged and ignored: the request in flight is answered and serve exits 0",
  async (t) => {
    const { server, requestArrived, release } = await startHoldingWorker(t);
    const { gateway, output, exited } = spawnServeGroup(t, server, { port: 0, adminPort: 0 });
    const { url, adminUrl } = await servingUrls(output, 40_000);
    await waitUntil(async () => (await fetch(`${adminUrl}/readyz`)).status === 200, 20_000);

    const inFlight = fetch(`${url}/v1/regions/eu/users/u-42`);
    await requestArrived;
    gateway.kill("SIGTERM");
    await waitUntil(() => output.text.includes("SIGTERM received, draining"), 10_000);
    gateway.kill("SIGTERM");
    await waitUntil(() => output.text.includes("ignored"), 10_000).catch(() => {
      throw new Error(`the second SIGTERM was not ignored; output:\n${output.text}`);
    });
    t.match(output.text, /SIGTERM received while stopping on SIGTERM; ignored/);

    release();
    const res = await inFlight;
    t.equal(res.status, 200, "the request in flight got its answer");
    t.match(await res.text(), /"id":"u-42"/);
    const [code, signal] = await exited;
    t.equal(code, 0, `exit 0 (signal ${signal}); output:\n${output.text}`);
    t.equal(count(output.text, /drained, bye/g), 1, "one drain");
  },
);

t.test(
  "--workers 2: signals to the whole process group drain each process once; the requests in flight are answered and the primary exits 0",
  async (t) => {
    const { server, release, arrivals } = await startHoldingWorker(t);
    const [port, adminPort] = [await freePort(), await freePort()];
    const { gateway, output, exited } = spawnServeGroup(t, server, { port, adminPort }, [
      "--workers",
      "2",
    ]);
    await waitUntil(() => count(output.text, /serving on/g) === 2, 40_000);
    const readyz = `http://127.0.0.1:${adminPort}/readyz`;
    await waitUntil(async () => (await fetch(readyz)).status === 200, 20_000);

    // Two connections: the primary hands them to the workers in turn, so each
    // worker has a request in flight and is still draining when signals repeat.
    const inFlight = ["u-1", "u-2"].map((id) =>
      fetch(`http://127.0.0.1:${port}/v1/regions/eu/users/${id}`),
    );
    await waitUntil(() => arrivals() === 2, 10_000);
    // Ctrl-C in a terminal: every process of the group gets it, and the
    // primary forwards it to its workers again.
    killGroup(gateway, "SIGINT");
    await waitUntil(() => count(output.text, /SIGINT received, draining/g) === 2, 10_000);
    // And once more while they drain (a second Ctrl-C, a repeated stop).
    killGroup(gateway, "SIGINT");
    await waitUntil(() => count(output.text, /; ignored/g) >= 3, 10_000).catch(() => {
      throw new Error(
        `repeated signals were not ignored by all 3 processes; output:\n${output.text}`,
      );
    });

    release();
    for (const [i, answer] of (await Promise.all(inFlight)).entries()) {
      t.equal(answer.status, 200, "each request in flight got its answer");
      t.match(await answer.text(), `"id":"u-${i + 1}"`);
    }
    const [code] = await exited;
    t.equal(code, 0, `the primary exits 0; output:\n${output.text}`);
    t.equal(count(output.text, /drained, bye/g), 2, "each worker drained once");
    t.match(output.text, /turnout: 2 workers drained\n/);
  },
);

t.test(
  "--workers 2: a worker that does not drain cleanly is named and the primary exits 1, never claiming every worker drained",
  async (t) => {
    const { server, release, arrivals } = await startHoldingWorker(t);
    const [port, adminPort] = [await freePort(), await freePort()];
    const { gateway, output, exited } = spawnServeGroup(t, server, { port, adminPort }, [
      "--workers",
      "2",
    ]);
    await waitUntil(() => count(output.text, /serving on/g) === 2, 40_000);
    await waitUntil(
      async () => (await fetch(`http://127.0.0.1:${adminPort}/readyz`)).status === 200,
      20_000,
    );
    const inFlight = ["u-1", "u-2"].map((id) =>
      fetch(`http://127.0.0.1:${port}/v1/regions/eu/users/${id}`).catch(() => undefined),
    );
    await waitUntil(() => arrivals() === 2, 10_000);

    gateway.kill("SIGTERM");
    await waitUntil(() => count(output.text, /SIGTERM received, draining/g) === 2, 10_000);
    const [victim] = readFileSync(`/proc/${gateway.pid}/task/${gateway.pid}/children`, "utf8")
      .trim()
      .split(/\s+/)
      .map(Number);
    process.kill(victim!, "SIGKILL");
    release();
    await Promise.all(inFlight);

    const [code] = await exited;
    t.equal(code, 1, `the primary exits 1; output:\n${output.text}`);
    t.match(output.text, `turnout: 1 of 2 workers drained; worker ${victim} exited (SIGKILL)`);
    t.notMatch(output.text, /turnout: 2 workers drained/);
  },
);
