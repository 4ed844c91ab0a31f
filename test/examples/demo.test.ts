/**
 * Runs the built demo (`node dist/examples/demo.js --smoke`): nats-server, the
 * example worker and the gateway really start, the banner's requests are made,
 * and everything stops again. CI runs `npm run build` before `npm test`.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:net";
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
  t.match(run.output, `curl -i 'http://127.0.0.1:${port}/v1/regions/eu-west/users/u-1001'`);
  for (const line of [
    "[smoke] ok   200 GET /v1/regions/eu-west/users/u-1001",
    "[smoke] ok   404 GET /v1/regions/eu-west/users/u-404",
    "[smoke] ok   200 GET /v1/regions/eu-west/users?page_size=1&tiers=TIER_PRO&tiers=TIER_ENTERPRISE",
    "[smoke] ok   201 POST /v1/regions/eu-west/users",
    "[smoke] ok   400 POST /v1/regions/eu-west/users",
    "[smoke] ok   200 GET /v1/orders/o-5001",
    "[smoke] ok   201 POST /v1/orders",
    "[smoke] ok   200 GET /metrics (admin)",
    "[smoke] ok   200 GET /readyz (admin)",
    "[smoke] 9/9 as expected",
  ]) {
    t.ok(run.output.includes(`${line}\n`), line);
  }
  t.notMatch(run.output, "FAIL");

  // Stopped in order: the gateway drained before the worker, and nothing is left.
  const gatewayDrained = run.output.indexOf("[gateway] turnout: drained, bye");
  const workerDrained = run.output.indexOf("[worker] worker: drained, bye");
  t.ok(gatewayDrained >= 0 && workerDrained > gatewayDrained, "gateway drained, then the worker");
  t.match(run.output, "[demo] stopped\n");

  const natsPid = pidOf(run.output, /nats-server ready on nats:\/\/127\.0\.0\.1:\d+ \(pid (\d+)\)/);
  const natsPort = /nats-server ready on nats:\/\/127\.0\.0\.1:(\d+)/.exec(run.output)?.[1];
  const workerPid = pidOf(run.output, /worker started \(pid (\d+)\)/);
  const gatewayPid = pidOf(run.output, /gateway started \(pid (\d+)\)/);
  t.ok(natsPid && workerPid && gatewayPid, "the demo named its processes");
  for (const pid of [natsPid, workerPid, gatewayPid]) {
    if (pid !== undefined) t.notOk(alive(pid), `process ${pid} has exited`);
  }
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
