/**
 * `turnout serve` drains once per process: a repeated SIGTERM/SIGINT (a second
 * Ctrl-C, a signal to the whole process group, which under --workers reaches
 * each worker directly and forwarded by the primary) is logged and ignored,
 * never Node's default exit that would cut the requests in flight.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { constants, existsSync, readFileSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import t, { type Test } from "tap";
import { freePortPair, type NatsServer } from "../../src/devtools/nats-server.js";
import { startHoldingWorker } from "../helpers/routes-and-workers.js";
import {
  exitCode,
  servingUrls,
  spawnServe,
  startUsersGetWorker,
  USERS_GET_ROUTE,
  usersGetServeArgs,
  waitUntil,
} from "../helpers/serve-process.js";
import { writeRoutes } from "../helpers/stack.js";
import { tempDir } from "../helpers/temp-dir.js";

/** `turnout serve` in a process group of its own, as a terminal or systemd runs it. */
function spawnServeGroup(
  t: Test,
  server: NatsServer,
  ports: { port: number; adminPort: number },
  extra: string[] = [],
  config?: string,
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
      ...usersGetServeArgs(server.url, ports, config),
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

/** `serve --workers 2` in a process group of its own, both workers ready, before a holding worker. */
async function twoReadyWorkers(t: Test) {
  const { server, release, arrivals } = await startHoldingWorker(t);
  const [port, adminPort] = await freePortPair();
  const spawned = spawnServeGroup(t, server, { port, adminPort }, ["--workers", "2"]);
  await waitUntil(() => count(spawned.output.text, /serving on/g) === 2, 40_000);
  const readyz = `http://127.0.0.1:${adminPort}/readyz`;
  await waitUntil(async () => (await fetch(readyz)).status === 200, 20_000);
  return { release, arrivals, port, ...spawned };
}

t.test(
  "--workers 2: signals to the whole process group drain each process once; the requests in flight are answered and the primary exits 0",
  async (t) => {
    const { release, arrivals, port, gateway, output, exited } = await twoReadyWorkers(t);

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
    const { release, arrivals, port, gateway, output, exited } = await twoReadyWorkers(t);
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

t.test(
  "--workers 2: a stop signal to the group while the workers are still starting stops them cleanly: exit 0, no worker counted as failed",
  async (t) => {
    const { server } = await startHoldingWorker(t);
    // After the primary forked: the workers are loading their modules (0 ms),
    // their route table, or starting their gateway.
    for (const delay of [0, 500, 1000]) {
      const { gateway, output, exited } = spawnServeGroup(t, server, { port: 0, adminPort: 0 }, [
        "--workers",
        "2",
      ]);
      await waitUntil(() => output.text.includes("starting 2 workers"), 20_000);
      await new Promise((resolve) => setTimeout(resolve, delay));
      killGroup(gateway, "SIGTERM");
      const timeout = AbortSignal.timeout(15_000);
      const [code, signal] = await Promise.race([
        exited,
        once(timeout, "abort").then(() => ["timed out", null]),
      ]);
      t.equal(code, 0, `${delay} ms: exit 0 (signal ${signal}); output:\n${output.text}`);
      t.notMatch(output.text, /of 2 workers drained/, `${delay} ms: no worker counted as failed`);
    }
  },
);

/**
 * A routes.yaml that is a named pipe: `serve` blocks reading it until the test
 * writes it, so a signal lands while the route table loads, every time.
 */
async function routesPipe(t: Test) {
  const file = join(tempDir("turnout-fifo"), "routes.yaml");
  execFileSync("mkfifo", [file]);
  // If serve never opens it, this reader frees the test's own blocked open.
  t.teardown(() => open(file, constants.O_RDONLY | constants.O_NONBLOCK).then((h) => h.close()));
  return {
    file,
    /** Resolves once serve has the pipe open for reading: it is loading the table. */
    opened: () => open(file, "w"),
  };
}

for (const workers of [[], ["--workers", "2"]]) {
  t.test(
    `serve${workers.map((arg) => ` ${arg}`).join("")}: a SIGTERM while the route table loads stops the start: nothing starts, exit 0`,
    async (t) => {
      const { server } = await startHoldingWorker(t);
      const pipe = await routesPipe(t);
      const ports = { port: 0, adminPort: 0 };
      const { gateway, output, exited } = spawnServeGroup(t, server, ports, workers, pipe.file);
      const timeout = AbortSignal.timeout(20_000);
      const opened = await Promise.race([pipe.opened(), once(timeout, "abort")]);
      if (!("writeFile" in opened))
        throw new Error(`serve never read routes.yaml:\n${output.text}`);
      killGroup(gateway, "SIGTERM");
      await opened.writeFile(readFileSync(writeRoutes(USERS_GET_ROUTE)));
      await opened.close();
      const [code, signal] = await Promise.race([
        exited,
        once(timeout, "abort").then(() => ["timed out", null]),
      ]);
      t.equal(code, 0, `exit 0 (signal ${signal}); output:\n${output.text}`);
      t.match(output.text, "turnout: SIGTERM received before the gateway started; not starting");
      t.notMatch(output.text, /serving on|starting 2 workers/, "nothing started");
    },
  );
}

t.test(
  "serve: a SIGTERM while the gateway's modules still load ends the start cleanly: exit 0, nothing starts",
  async (t) => {
    const server = await startUsersGetWorker(t);
    const hold = tempDir("turnout-hold");
    const gateway = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "--import",
        "./test/helpers/hold-module/register.mjs",
        "src/cli/main.ts",
        "serve",
        "--host",
        "127.0.0.1",
        ...usersGetServeArgs(server.url, { port: 0, adminPort: 0 }),
      ],
      {
        stdio: ["ignore", "pipe", "pipe"],
        env: {
          ...process.env,
          TURNOUT_LOG_LEVEL: "warn",
          TURNOUT_TEST_HOLD_MODULE: "/src/cli/serve.ts",
          TURNOUT_TEST_HOLD_DIR: hold,
        },
      },
    );
    t.teardown(() => gateway.kill("SIGKILL"));
    const output = { text: "" };
    gateway.stdout.on("data", (chunk) => (output.text += chunk));
    gateway.stderr.on("data", (chunk) => (output.text += chunk));
    const exited = once(gateway, "exit");
    // serve.ts, and all of the gateway it imports, is not loaded yet.
    await waitUntil(() => existsSync(join(hold, "held")), 20_000);
    gateway.kill("SIGTERM");
    writeFileSync(join(hold, "release"), "");
    const timeout = AbortSignal.timeout(20_000);
    const [code, signal] = await Promise.race([
      exited,
      once(timeout, "abort").then(() => ["timed out", null]),
    ]);
    t.equal(code, 0, `exit 0 (signal ${signal}); output:\n${output.text}`);
    t.match(output.text, "turnout: SIGTERM received before the gateway started; not starting");
    t.notMatch(output.text, /serving on/, "nothing started");
  },
);

t.test(
  "SIGTERM while the NATS server is frozen (its socket open, nothing answered): serve drains within its NATS limit and exits 0",
  async (t) => {
    const server = await startUsersGetWorker(t);
    const { gateway, output } = spawnServe(
      t,
      usersGetServeArgs(server.url, { port: 0, adminPort: 0 }),
    );
    const { adminUrl } = await servingUrls(output, 40_000);
    await waitUntil(async () => (await fetch(`${adminUrl}/readyz`)).status === 200, 20_000);

    server.process.kill("SIGSTOP");
    t.teardown(() => server.process.kill("SIGCONT")); // before its stop, registered earlier
    gateway.kill("SIGTERM");
    // nats.js alone waited ~40 s for its stale-ping check, then kept a socket open for good.
    const code = await exitCode(gateway, 30_000);
    t.equal(code, 0, `output:\n${output.text}`);
    t.match(output.text, /drained, bye/);
  },
);
