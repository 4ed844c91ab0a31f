/**
 * Runs the built demo (`node dist/examples/demo.js --smoke`): nats-server, the
 * example legacy services, the example worker and the gateway really start, the
 * banner's requests are made (the split, the shadow mismatch, the forced side),
 * and everything stops again. CI runs `npm run build` before `npm test`.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { type AddressInfo, createServer, type Server } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import t, { type Test } from "tap";
import { freePort } from "../../src/devtools/nats-server.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const DEMO = join(ROOT, "dist/examples/demo.js");
const RUN_TIMEOUT_MS = 60_000;

interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly output: string;
}

/** Runs the demo to its end; past the timeout it is stopped (SIGTERM, then SIGKILL). */
function runDemo(
  t: Test,
  args: string[],
  env: Record<string, string>,
  timeoutMs = RUN_TIMEOUT_MS,
): Promise<Run> {
  const child: ChildProcess = spawn(process.execPath, [DEMO, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env, TURNOUT_LOG_LEVEL: "warn" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const running = () => child.exitCode === null && child.signalCode === null;
  // The demo stops its own children when it is stopped, even by SIGKILL (see demo.ts).
  let killTimer: NodeJS.Timeout | undefined;
  const stop = () => {
    if (!running()) return;
    child.kill("SIGTERM");
    killTimer = setTimeout(() => running() && child.kill("SIGKILL"), 10_000);
  };
  t.teardown(stop);
  const timer = setTimeout(() => {
    output += `\n[test] the demo did not finish within ${timeoutMs / 1000} s: stopping it\n`;
    stop();
  }, timeoutMs);
  return new Promise((resolveRun) => {
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      // Wait for the pipes to be read to their end.
      setImmediate(() => resolveRun({ code, signal, output }));
    });
  });
}

/** pid and command line of every running nats-server. */
function natsServers(): Map<number, string> {
  const result = spawnSync("pgrep", ["-a", "-x", "nats-server"], { encoding: "utf8" });
  const servers = new Map<number, string>();
  for (const line of result.stdout.split("\n")) {
    const match = /^(\d+) (.*)$/.exec(line.trim());
    if (match) servers.set(Number(match[1]), match[2] ?? "");
  }
  return servers;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function pidOf(output: string, pattern: RegExp): number | undefined {
  const match = pattern.exec(output);
  return match ? Number(match[1]) : undefined;
}

async function twoFreePorts(): Promise<[number, number]> {
  const port = await freePort();
  let adminPort = await freePort();
  while (adminPort === port) adminPort = await freePort();
  return [port, adminPort];
}

t.test("the demo's --smoke run answers every printed request as expected", async (t) => {
  if (!existsSync(DEMO)) {
    t.fail(`${DEMO} is missing: run \`npm run build\` before the tests`);
    return;
  }
  const before = natsServers();
  const [port, adminPort] = await twoFreePorts();
  const run = await runDemo(t, ["--smoke"], {
    DEMO_PORT: String(port),
    DEMO_ADMIN_PORT: String(adminPort),
  });

  t.equal(run.code, 0, "exit code 0", { output: run.output });
  t.match(run.output, "[worker] worker ready on svc.users.*, svc.orders.*");
  t.match(run.output, /\[legacy\] legacy ready on :\d+ \(users\), :\d+ \(orders\)/);
  const users = `http://127.0.0.1:${port}/v1/regions/eu-west/users`;
  const admin = `http://127.0.0.1:${adminPort}`;
  for (const curl of [
    `curl -i -H 'x-user-id: alice' '${users}/u-1001'`,
    `curl -i -H 'x-user-id: bob' '${users}/u-1001'`,
    `curl -i -H 'x-user-id: alice' '${users}/u-1002'`,
    `curl -i -H 'authorization: Bearer demo-token' '${admin}/admin/routes/users.get/mismatches'`,
    `curl -i -H 'x-user-id: alice' -H 'turnout-backend: legacy' -H 'turnout-token: demo-token' '${users}/u-1001'`,
    `curl -s '${admin}/metrics' | grep -E 'turnout_(requests|shadow|fallbacks)_total'`,
    `curl -i -H 'authorization: Bearer demo-token' '${admin}/admin/routes'`,
  ]) {
    t.ok(run.output.includes(`  ${curl}\n`), `the banner prints ${curl}`);
  }
  t.match(run.output, "admin token: demo-token");
  const natsUrl = /nats-server ready on (nats:\/\/127\.0\.0\.1:\d+)/.exec(run.output)?.[1];
  t.ok(natsUrl, "the demo says where its nats-server listens");
  t.match(
    run.output,
    new RegExp(`  node dist/src/cli/main\\.js cutover list --config \\S+ --nats-url ${natsUrl}\n`),
    "the banner's CLI line names the demo's NATS, not routes.yaml's",
  );
  t.match(run.output, /Fallback: stop the worker \(kill \d+\)/);
  // orders.get has a plan: the banner shows it; a smoke run sends no load and waits for no step.
  t.match(run.output, /orders\.get +nats 0%, shadow 0%, plan \(moves by itself\)\n/);
  t.match(run.output, "  orders.get: 0 -> 10 -> 25 -> 50 -> 100% NATS, a step every 10s\n");
  t.notMatch(run.output, "background load:");

  const u = "GET /v1/regions/eu-west/users";
  for (const line of [
    `[smoke] ok   200 ${u}/u-1001 [x-user-id: alice]: served by nats, shadow match`,
    `[smoke] ok   200 ${u}/u-1001 [x-user-id: bob]: served by legacy, shadow match`,
    `[smoke] ok   200 ${u}/u-1002 [x-user-id: alice]: served by nats, shadow mismatch`,
    "[smoke] ok   200 GET /admin/routes/users.get/mismatches (admin): 1 kept, newest " +
      `${u}/u-1002: $.email changed: nats "grace@example.com", legacy "Grace@example.com"`,
    `[smoke] ok   200 ${u}/u-1001 [x-user-id: alice, turnout-backend: legacy]: served by legacy`,
    `[smoke] ok   404 ${u}/u-404`,
    `[smoke] ok   200 ${u}?page_size=1&tiers=TIER_PRO&tiers=TIER_ENTERPRISE: served by nats`,
    `[smoke] ok   400 ${u}?tiers=TIER_GOLD: served by gateway`,
    "[smoke] ok   201 POST /v1/regions/eu-west/users: served by legacy",
    "[smoke] ok   201 POST /v1/orders: served by legacy",
    "[smoke] ok   200 GET /readyz (admin)",
    "[smoke] 14/14 as expected",
  ]) {
    t.ok(run.output.includes(`${line}\n`), line);
  }
  // u-404 is compared too (both sides answer the same 404): at least the two u-1001.
  const shadow =
    /\[smoke\] ok {3}200 GET \/metrics \(admin\): users\.get shadow: match (\d+), mismatch (\d+)\n/.exec(
      run.output,
    );
  t.ok(shadow, "the metrics line reports the shadow results");
  t.ok(Number(shadow?.[1]) >= 2, "the u-1001 comparisons matched");
  t.equal(Number(shadow?.[2]), 1, "one mismatch: u-1002");
  // Which side serves orders.get depends on how far its plan got: both answer the same.
  t.match(run.output, /\[smoke\] ok {3}200 GET \/v1\/orders\/o-5001: served by (legacy|nats)\n/);
  // The live split, from the KV bucket (nats-server runs with JetStream).
  t.match(
    run.output,
    /\[smoke\] ok {3}200 GET \/admin\/routes \(admin\): live: users\.get 50%, users\.list 100%, users\.create 0%, orders\.get (0|10)%, orders\.create 0%\n/,
  );
  t.notMatch(run.output, "FAIL");

  // Stopped in order: gateway (drained), worker (drained), legacy, then nats-server.
  const gatewayDrained = run.output.indexOf("[gateway] turnout: drained, bye");
  const workerDrained = run.output.indexOf("[worker] worker: drained, bye");
  const legacyStopped = run.output.indexOf("[legacy] legacy: stopped, bye");
  const stopped = run.output.indexOf("[demo] stopped\n");
  t.ok(gatewayDrained >= 0 && workerDrained > gatewayDrained, "gateway drained, then the worker");
  t.ok(legacyStopped > workerDrained, "then the legacy services");
  t.ok(stopped > legacyStopped, "then nats-server");

  const natsPid = pidOf(run.output, /nats-server ready on nats:\/\/127\.0\.0\.1:\d+ \(pid (\d+)\)/);
  const natsPort = /nats-server ready on nats:\/\/127\.0\.0\.1:(\d+)/.exec(run.output)?.[1];
  const legacyPid = pidOf(run.output, /legacy started \(pid (\d+)\)/);
  const workerPid = pidOf(run.output, /worker started \(pid (\d+)\)/);
  const gatewayPid = pidOf(run.output, /gateway started \(pid (\d+)\)/);
  t.ok(natsPid && legacyPid && workerPid && gatewayPid, "the demo named its processes");
  for (const pid of [natsPid, legacyPid, workerPid, gatewayPid]) {
    if (pid !== undefined) t.notOk(alive(pid), `process ${pid} has exited`);
  }
  // The gateway served a copy of routes.yaml with the legacy URLs replaced: removed on stop.
  const routesFile = /\[demo\] routes: (\S+) /.exec(run.output)?.[1];
  t.ok(routesFile, "the demo named its route table");
  if (routesFile !== undefined) t.notOk(existsSync(routesFile), "its temporary copy is removed");
  // Other test files may start and stop nats-servers meanwhile: compare, but only
  // count the demo's own (its port) as a leak.
  const after = natsServers();
  const onDemoPort = (command: string) => {
    const args = command.split(/\s+/);
    return natsPort !== undefined && args[args.indexOf("-p") + 1] === natsPort;
  };
  t.ok(natsPort, "the demo named its nats-server's port");
  const leaked = [...after].filter(([pid, command]) => !before.has(pid) && onDemoPort(command));
  t.same(leaked, [], "no nats-server of the demo is left running", {
    before: before.size,
    after: after.size,
  });
});

t.test("a busy port is reported clearly and nothing is started", async (t) => {
  if (!existsSync(DEMO)) {
    t.fail(`${DEMO} is missing: run \`npm run build\` before the tests`);
    return;
  }
  const [port, adminPort] = await twoFreePorts();
  const blocker: Server = createServer();
  await new Promise<void>((done) => blocker.listen(adminPort, "127.0.0.1", done));
  t.teardown(() => new Promise<void>((done) => blocker.close(() => done())));

  const run = await runDemo(t, ["--smoke"], {
    DEMO_PORT: String(port),
    DEMO_ADMIN_PORT: String(adminPort),
  });
  t.equal(run.code, 1, "exit code 1", { output: run.output });
  t.match(run.output, `port ${adminPort} on 127.0.0.1 is already in use`);
  t.match(run.output, "DEMO_ADMIN_PORT=<port>");
  t.notMatch(run.output, "nats-server ready");
});

t.test(
  "a busy default admin port (9090, Prometheus's too) is replaced by a free one, said out loud",
  async (t) => {
    if (!existsSync(DEMO)) {
      t.fail(`${DEMO} is missing: run \`npm run build\` before the tests`);
      return;
    }
    // Held here unless something (a Prometheus server) already listens there.
    const blocker: Server = createServer();
    await new Promise<void>((done) => {
      blocker.once("error", () => done());
      blocker.listen({ port: 9090, host: "127.0.0.1", exclusive: true }, done);
    });
    t.teardown(() => new Promise<void>((done) => blocker.close(() => done())));

    const port = await freePort();
    const run = await runDemo(t, ["--smoke"], { DEMO_PORT: String(port), DEMO_ADMIN_PORT: "" });
    t.equal(run.code, 0, "exit code 0", { output: run.output });
    const moved =
      /port 9090 on 127\.0\.0\.1 is in use .*the demo uses (\d+) instead; DEMO_ADMIN_PORT=<port> npm run demo chooses one/.exec(
        run.output,
      );
    t.ok(moved, "the move is said", { output: run.output });
    t.match(run.output, `curl -s 'http://127.0.0.1:${moved?.[1]}/metrics'`, "the banner uses it");
  },
);

t.test("a busy legacy port chosen with DEMO_LEGACY_USERS_PORT is reported too", async (t) => {
  if (!existsSync(DEMO)) {
    t.fail(`${DEMO} is missing: run \`npm run build\` before the tests`);
    return;
  }
  const [port, adminPort] = await twoFreePorts();
  const blocker: Server = createServer();
  await new Promise<void>((done) => blocker.listen(0, "127.0.0.1", done));
  t.teardown(() => new Promise<void>((done) => blocker.close(() => done())));
  const usersPort = (blocker.address() as AddressInfo).port;

  const run = await runDemo(t, ["--smoke"], {
    DEMO_PORT: String(port),
    DEMO_ADMIN_PORT: String(adminPort),
    DEMO_LEGACY_USERS_PORT: String(usersPort),
  });
  t.equal(run.code, 1, "exit code 1", { output: run.output });
  t.match(run.output, `port ${usersPort} on 127.0.0.1 is already in use`);
  t.match(run.output, "DEMO_LEGACY_USERS_PORT=<port>");
  t.notMatch(run.output, "nats-server ready");
});

t.test(
  "Ctrl-C after the output went away (npm run demo | tee, both interrupted) still stops everything",
  async (t) => {
    const [port, adminPort] = await twoFreePorts();
    const child = spawn(process.execPath, [DEMO], {
      cwd: ROOT,
      env: {
        ...process.env,
        DEMO_PORT: String(port),
        DEMO_ADMIN_PORT: String(adminPort),
        TURNOUT_LOG_LEVEL: "warn",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    t.teardown(() => child.exitCode === null && child.kill("SIGKILL"));
    let output = "";
    const ready = new Promise<void>((resolve) => {
      child.stdout?.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes("curl -i")) resolve();
      });
    });
    await Promise.race([
      ready,
      new Promise((resolve) => setTimeout(resolve, RUN_TIMEOUT_MS).unref()),
    ]);
    const natsPid = pidOf(output, /nats-server ready on nats:\/\/127\.0\.0\.1:\d+ \(pid (\d+)\)/);
    const workerPid = pidOf(output, /worker started \(pid (\d+)\)/);
    t.ok(natsPid && workerPid, "the demo started and named its processes");
    // The reader goes away: the demo's next writes fail with EPIPE.
    child.stdout?.destroy();
    child.stderr?.destroy();
    child.kill("SIGINT");
    const [code] = (await Promise.race([
      once(child, "exit"),
      new Promise((resolve) => setTimeout(() => resolve(["still running"]), 30_000).unref()),
    ])) as [number | string];
    t.not(code, "still running", "the launcher exited");
    // The supervisor stops its children after the launcher returns: give it a moment.
    for (let i = 0; i < 100 && [natsPid, workerPid].some((pid) => pid && alive(pid)); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    for (const pid of [natsPid, workerPid])
      if (pid) t.notOk(alive(pid), `process ${pid} has exited`);
  },
);
