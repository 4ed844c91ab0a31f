/**
 * `npm run demo`: a whole working system on this machine (127.0.0.1 only): a local
 * nats-server, the example legacy HTTP services (examples/legacy.ts), the example
 * NATS worker (examples/worker.ts) and the gateway between them, serving
 * routes.yaml: users.get split 50/50 by x-user-id with every request shadowed (and
 * one deliberate difference to find), writes on legacy, users.list on NATS, and
 * orders.get moving from legacy to NATS by itself through its plan (the demo sends
 * it 10 requests/s and prints a line at each change of its live split). nats-server
 * runs with JetStream: the live cutover state is in NATS KV.
 * Prints curl lines to try; Ctrl-C stops everything in order: the background load,
 * then the gateway (it drains), the worker, the legacy services, then nats-server.
 *
 *   node dist/examples/demo.js [--smoke]
 *
 * env: DEMO_PORT (8080), DEMO_ADMIN_PORT (9090), DEMO_LEGACY_USERS_PORT and
 * DEMO_LEGACY_ORDERS_PORT (free ones unless set), DEMO_SMOKE=1 (same as --smoke:
 * run the printed requests, report, stop; exit 0 only when all were as expected),
 * TURNOUT_LOG_LEVEL (the gateway's; "warn" here unless set, "info" logs each request).
 *
 * The legacy services listen on free ports (the ones routes.yaml names, 8081 and
 * 8082, are often taken on a developer's machine): the gateway serves a copy of
 * routes.yaml, in a temporary folder removed on stop, with the `legacy:` URLs
 * replaced by where they really listen. The gateway's admin token
 * (TURNOUT_ADMIN_TOKEN) is "demo-token".
 *
 * The worker may be stopped on its own (kill <pid>, printed in the banner) to see
 * the fallback to legacy: the demo keeps running. Any other process ending stops
 * everything, and so does the worker's in a smoke run.
 *
 * Two processes: this one (the launcher) starts a copy of itself (the supervisor)
 * in a session of its own, which starts and stops the rest. A Ctrl-C in a terminal
 * signals the whole foreground process group at once, and nats-server would quit
 * at once while the gateway and the worker still drain; in their own session they
 * only hear from the supervisor, which stops them one after the other. If the
 * launcher goes away without a word (SIGKILL), the supervisor notices and stops
 * everything all the same.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseDocument } from "yaml";
import {
  freePort,
  NATS_INSTALL_HINT,
  type NatsServer,
  natsServerAvailable,
  startNatsServer,
} from "../src/devtools/nats-server.js";
import { type Child, firstLine, portIsFree, say, startChild } from "./children.js";
import {
  banner,
  DEMO_ADMIN_TOKEN,
  type Listeners,
  PLAN_LOAD,
  runSmoke,
  startLoad,
  watchCutover,
} from "./demo-requests.js";
import { distFile, repoRoot } from "./paths.js";

const SUPERVISOR_ENV = "TURNOUT_DEMO_SUPERVISOR";
const READY_WITHIN_MS = 15_000;
const GATEWAY_GRACE_MS = 10_000;
const WORKER_GRACE_MS = 5_000;
/** The legacy services give requests in progress 5 s, then cut them. */
const LEGACY_GRACE_MS = 7_000;
const WORKER_READY_LINE = "worker ready on";
const LEGACY_READY_LINE = /legacy ready on :(\d+) \(users\), :(\d+) \(orders\)/;

// --- the launcher -------------------------------------------------------------

function launch(): void {
  const self = fileURLToPath(import.meta.url);
  const supervisor = spawn(
    process.execPath,
    [...process.execArgv, self, ...process.argv.slice(2)],
    {
      detached: true, // a session and process group of its own: no terminal signals
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      env: { ...process.env, [SUPERVISOR_ENV]: "1" },
    },
  );
  const forward = (signal: NodeJS.Signals) => {
    if (supervisor.exitCode === null && supervisor.signalCode === null) supervisor.kill(signal);
  };
  process.on("SIGINT", () => forward("SIGINT"));
  process.on("SIGTERM", () => forward("SIGTERM"));
  process.on("SIGHUP", () => forward("SIGTERM")); // the terminal went away
  supervisor.once("error", (error) => {
    console.error(`[demo] cannot start: ${error.message}`);
    process.exit(1);
  });
  supervisor.once("exit", (code, signal) => {
    if (signal !== null) console.error(`[demo] the supervisor was killed by ${signal}`);
    process.exit(code ?? 1);
  });
}

// --- the supervisor -----------------------------------------------------------

interface Ports {
  readonly port: number;
  readonly adminPort: number;
  /** 0: a free one, chosen by the legacy process itself. */
  readonly legacyUsersPort: number;
  readonly legacyOrdersPort: number;
}

const PORT_ENV: Record<keyof Ports, string> = {
  port: "DEMO_PORT",
  adminPort: "DEMO_ADMIN_PORT",
  legacyUsersPort: "DEMO_LEGACY_USERS_PORT",
  legacyOrdersPort: "DEMO_LEGACY_ORDERS_PORT",
};

function readPort(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  const port = Number(text);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`${name}=${text} is not a TCP port (1-65535)`);
  }
  return port;
}

function readPorts(): Ports {
  const ports: Ports = {
    port: readPort(PORT_ENV.port, 8080),
    adminPort: readPort(PORT_ENV.adminPort, 9090),
    legacyUsersPort: readPort(PORT_ENV.legacyUsersPort, 0),
    legacyOrdersPort: readPort(PORT_ENV.legacyOrdersPort, 0),
  };
  const seen = new Map<number, string>();
  for (const [key, port] of Object.entries(ports) as Array<[keyof Ports, number]>) {
    const other = seen.get(port);
    if (other !== undefined) {
      throw new Error(`${other} and ${PORT_ENV[key]} are both ${port}: they must differ`);
    }
    if (port !== 0) seen.set(port, PORT_ENV[key]);
  }
  return ports;
}

/**
 * A default port (8080, 9090) that is busy is replaced by a free one, said
 * out loud: 9090 is also Prometheus's default, and the `prometheus` package
 * the tests need starts one on systemd machines. A port chosen with its
 * variable is kept, and checkPortsFree reports it when busy.
 */
async function settlePorts(ports: Ports): Promise<Ports> {
  const settled = { ...ports };
  for (const key of ["port", "adminPort"] as const) {
    const env = PORT_ENV[key];
    const chosen = process.env[env] !== undefined && process.env[env] !== "";
    if (chosen || (await portIsFree(ports[key]))) continue;
    settled[key] = await freePort();
    say(
      `port ${ports[key]} on 127.0.0.1 is in use (9090 is also Prometheus's default), so the ` +
        `demo uses ${settled[key]} instead; ${env}=<port> npm run demo chooses one`,
    );
  }
  return settled;
}

async function checkPortsFree(ports: Ports): Promise<void> {
  for (const [key, port] of Object.entries(ports) as Array<[keyof Ports, number]>) {
    const env = PORT_ENV[key];
    if (port !== 0 && !(await portIsFree(port))) {
      throw new Error(
        `port ${port} on 127.0.0.1 is already in use (another demo or gateway still running?); ` +
          `stop what listens there, or choose another port: ${env}=<port> npm run demo`,
      );
    }
  }
}

/** Where the legacy services listen, e.g. http://127.0.0.1:8081. */
interface LegacyUrls {
  readonly users: string;
  readonly orders: string;
}

interface DemoRoutes {
  readonly file: string;
  /** One line per route: name, cutover and sticky key. */
  readonly cutovers: string[];
  /** One line per route with a plan: its steps and window. */
  readonly plans: string[];
}

interface PlanYaml {
  steps?: unknown;
  every?: unknown;
}

/**
 * Writes routes.yaml with its `legacy:` URLs replaced (and its protos made
 * absolute, since they are relative to the file) into `dir`. Comments and
 * everything else are kept as they are.
 */
function writeDemoRoutes(root: string, dir: string, legacy: LegacyUrls): DemoRoutes {
  const source = join(root, "routes.yaml");
  const doc = parseDocument(readFileSync(source, "utf8"));
  if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors[0]!.message}`);
  const table = doc.toJS() as {
    protos?: unknown;
    legacy?: Record<string, unknown>;
    routes?: Array<{ name?: string; cutover?: Record<string, unknown> & { plan?: PlanYaml } }>;
  };
  for (const name of ["users", "orders"] as const) {
    if (table.legacy?.[name] === undefined) {
      throw new Error(`${source} has no legacy.${name}: the demo points it at its legacy service`);
    }
    doc.setIn(["legacy", name], legacy[name]);
  }
  if (Array.isArray(table.protos)) {
    table.protos.forEach((entry, i) => {
      if (typeof entry === "string") doc.setIn(["protos", i], resolve(root, entry));
    });
  }
  const file = join(dir, "routes.yaml");
  const header =
    `# Written by the demo from ${source}: the same route table, with the legacy URLs\n` +
    "# replaced by where the demo's legacy services listen and the protos made absolute.\n";
  writeFileSync(file, header + doc.toString());

  const width = Math.max(0, ...(table.routes ?? []).map((route) => (route.name ?? "").length));
  const cutovers = (table.routes ?? []).map(({ name = "?", cutover = {} }) => {
    const nats = cutover.nats === undefined ? "nats (default)" : `nats ${cutover.nats}%`;
    const parts = [nats, `shadow ${cutover.shadow ?? 0}%`];
    if (cutover.sticky !== undefined) parts.push(`sticky ${String(cutover.sticky)}`);
    if (cutover.plan !== undefined) parts.push("plan (moves by itself)");
    return `${name.padEnd(width)}  ${parts.join(", ")}`;
  });
  const plans = (table.routes ?? []).flatMap(({ name = "?", cutover = {} }) => {
    const plan = cutover.plan;
    if (plan === undefined) return [];
    const steps = Array.isArray(plan.steps) ? plan.steps.map(String) : [];
    const start = String(cutover.nats ?? 100);
    const path = [start, ...steps.filter((step) => step !== start)].join(" -> ");
    return [`${name}: ${path}% NATS, a step every ${String(plan.every)}`];
  });
  return { file, cutovers, plans };
}

class Supervisor {
  readonly #smoke: boolean;
  readonly #ports: Ports;
  readonly #lifetime = new AbortController();
  /** The background load and the cutover watch: stopped first, before the gateway. */
  readonly #background = new AbortController();
  #nats: NatsServer | undefined;
  #tempDir: string | undefined;
  readonly #children: Child[] = [];
  #stopping: Promise<number> | undefined;
  #exitCode = 0;

  constructor(ports: Ports, smoke: boolean) {
    this.#ports = ports;
    this.#smoke = smoke;
  }

  get listeners(): Listeners {
    return {
      url: `http://127.0.0.1:${this.#ports.port}`,
      adminUrl: `http://127.0.0.1:${this.#ports.adminPort}`,
    };
  }

  async run(): Promise<number> {
    const onSignal = (signal: string) => {
      if (this.#stopping === undefined) say(`${signal} received: stopping`);
      void this.stop(this.#smoke ? 1 : 0); // an interrupted smoke test has not passed
    };
    process.on("SIGINT", () => onSignal("SIGINT"));
    process.on("SIGTERM", () => onSignal("SIGTERM"));
    process.on("disconnect", () => {
      if (this.#stopping === undefined) say("the launcher went away: stopping");
      void this.stop(1);
    });

    try {
      await this.#start();
    } catch (error) {
      if (this.#stopping === undefined) {
        say(error instanceof Error ? error.message : String(error));
        return this.stop(1);
      }
    }
    if (this.#stopping !== undefined) return this.#stopping;

    if (this.#smoke) {
      say("smoke test: running the requests above");
      const results = await runSmoke(this.listeners, this.#lifetime.signal);
      for (const result of results) process.stdout.write(`[smoke] ${result.line}\n`);
      const good = results.filter((result) => result.ok).length;
      process.stdout.write(`[smoke] ${good}/${results.length} as expected\n`);
      return this.stop(good === results.length ? 0 : 1);
    }
    return new Promise<number>((resolve) => {
      // Until a signal or a crash: whichever stops us reports the exit code.
      this.#lifetime.signal.addEventListener("abort", () => void this.#stopping?.then(resolve));
    });
  }

  async #start(): Promise<void> {
    const root = repoRoot();
    for (const file of ["examples/worker.js", "examples/legacy.js", "src/cli/main.js"]) {
      if (!existsSync(distFile(file))) {
        throw new Error(`${distFile(file)} is missing: run \`npm run build\` first`);
      }
    }
    await checkPortsFree(this.#ports);
    if (!natsServerAvailable()) throw new Error(NATS_INSTALL_HINT);

    // JetStream: the live cutover state and the plan lease are NATS KV buckets.
    const nats = await startNatsServer({ jetstream: true });
    if (this.#stopping !== undefined) {
      await nats.stop(); // stopped while it started: #stopAll did not know it yet
      return;
    }
    this.#nats = nats;
    say(`nats-server ready on ${nats.url} (pid ${nats.process.pid})`);
    nats.process.once("exit", (code, signal) =>
      this.#unexpected(
        "nats-server",
        signal === null ? `exit code ${code}` : `killed by ${signal}`,
      ),
    );

    // The gateway logs every request at "info": the demo shows only warnings unless asked.
    const env = {
      ...process.env,
      TURNOUT_NATS_URL: nats.url,
      TURNOUT_LOG_LEVEL: process.env.TURNOUT_LOG_LEVEL ?? "warn",
    };
    const { port, adminPort, legacyUsersPort, legacyOrdersPort } = this.#ports;
    const legacyProcess = this.#spawn(
      "legacy",
      [
        distFile("examples/legacy.js"),
        "--users-port",
        String(legacyUsersPort),
        "--orders-port",
        String(legacyOrdersPort),
      ],
      root,
      env,
    );
    const [, usersPort, ordersPort] = await firstLine(
      legacyProcess,
      LEGACY_READY_LINE,
      READY_WITHIN_MS,
    );
    if (this.#stopping !== undefined) return;
    const legacy = {
      users: `http://127.0.0.1:${usersPort}`,
      orders: `http://127.0.0.1:${ordersPort}`,
    };
    this.#tempDir = mkdtempSync(join(tmpdir(), "turnout-demo-"));
    const routes = writeDemoRoutes(root, this.#tempDir, legacy);
    say(`routes: ${routes.file} (legacy: users ${legacy.users}, orders ${legacy.orders})`);

    const worker = this.#spawn("worker", [distFile("examples/worker.js")], root, env);
    const workerReady = new Promise<void>((resolve) =>
      worker.onLine((line) => line.includes(WORKER_READY_LINE) && resolve()),
    );
    this.#spawn(
      "gateway",
      [
        distFile("src/cli/main.js"),
        "serve",
        "--config",
        routes.file,
        "--nats-url",
        nats.url,
        "--host",
        "127.0.0.1",
        "--port",
        String(port),
        "--admin-port",
        String(adminPort),
      ],
      root,
      { ...env, TURNOUT_ADMIN_TOKEN: DEMO_ADMIN_TOKEN },
    );
    await this.#waitReady(workerReady);
    if (this.#stopping !== undefined) return;
    process.stdout.write(
      banner(this.listeners, {
        cutovers: routes.cutovers,
        workerPid: worker.process.pid,
        legacy,
        routesFile: routes.file,
        plans: routes.plans,
        load: !this.#smoke,
        natsUrl: nats.url,
      }),
    );
    // The smoke run does not wait for plan steps; the demo gives the plan traffic.
    if (this.#smoke || routes.plans.length === 0) return;
    const signal = this.#background.signal;
    say(
      `background load: ${PLAN_LOAD.perSecond} requests/s to ${PLAN_LOAD.method} ` +
        `${PLAN_LOAD.path} (${PLAN_LOAD.route}); watching the live cutover every second`,
    );
    startLoad(this.listeners, signal, say);
    watchCutover(this.listeners, signal, say);
  }

  #spawn(name: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Child {
    const child = startChild(name, args, { cwd, env });
    this.#children.push(child);
    say(`${name} started (pid ${child.process.pid})`);
    void child.exited.then((how) => this.#ended(name, how));
    return child;
  }

  /** Until the worker said it is ready and the gateway's /readyz answers 200. */
  async #waitReady(workerReady: Promise<void>): Promise<void> {
    const deadline = Date.now() + READY_WITHIN_MS;
    let workerUp = false;
    void workerReady.then(() => (workerUp = true));
    let last = "no answer yet";
    while (this.#stopping === undefined) {
      try {
        const response = await fetch(`${this.listeners.adminUrl}/readyz`, {
          signal: AbortSignal.timeout(1000),
        });
        last = `${response.status} ${await response.text()}`;
        if (response.status === 200 && workerUp) return;
      } catch (error) {
        last = error instanceof Error ? error.message : String(error);
      }
      if (Date.now() > deadline) {
        const missing = workerUp ? "the gateway" : "the worker (no ready line)";
        throw new Error(
          `${missing} was not ready within ${READY_WITHIN_MS / 1000} s ` +
            `(last /readyz: ${last}); the children's output is above`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  #ended(name: string, how: string): void {
    if (this.#stopping !== undefined) return;
    if (name === "worker" && !this.#smoke) {
      say(
        `worker stopped (${how}): the rest keeps running. Requests meant for NATS now find no ` +
          "responders and legacy serves them (turnout_fallbacks_total on /metrics). Ctrl-C stops the rest.",
      );
      return;
    }
    this.#unexpected(name, how);
  }

  #unexpected(name: string, how: string): void {
    if (this.#stopping !== undefined) return;
    say(`${name} stopped unexpectedly (${how}): stopping the rest`);
    void this.stop(1);
  }

  /** Gateway first (it drains), then the worker, the legacy services, nats-server. Idempotent. */
  stop(exitCode: number): Promise<number> {
    if (this.#stopping !== undefined) return this.#stopping;
    this.#background.abort(); // no new requests while the gateway drains
    this.#exitCode = exitCode;
    this.#stopping = this.#stopAll();
    this.#lifetime.abort();
    return this.#stopping;
  }

  async #stopAll(): Promise<number> {
    let clean = true;
    // Started legacy, worker, gateway: stopped gateway, worker, legacy.
    const order = [...this.#children].reverse();
    const grace: Record<string, number> = {
      gateway: GATEWAY_GRACE_MS,
      worker: WORKER_GRACE_MS,
      legacy: LEGACY_GRACE_MS,
    };
    for (const child of order) {
      if (!child.isRunning()) continue;
      const how = await child.stop(grace[child.name] ?? WORKER_GRACE_MS);
      if (how !== "exit code 0") {
        say(`${child.name} ended with ${how}`);
        clean = false;
      }
    }
    if (this.#tempDir !== undefined) rmSync(this.#tempDir, { recursive: true, force: true });
    if (this.#nats === undefined) return this.#exitCode; // nothing was started
    await this.#nats.stop();
    say(clean ? "stopped" : "stopped (not every process ended cleanly)");
    // A smoke run fails on an unclean stop too: it is what the test checks.
    return this.#smoke && !clean ? Math.max(this.#exitCode, 1) : this.#exitCode;
  }
}

async function supervise(): Promise<number> {
  const smoke = process.argv.includes("--smoke") || process.env.DEMO_SMOKE === "1";
  let ports: Ports;
  try {
    ports = await settlePorts(readPorts());
  } catch (error) {
    say(error instanceof Error ? error.message : String(error));
    return 1;
  }
  return new Supervisor(ports, smoke).run();
}

if (process.env[SUPERVISOR_ENV] === "1") {
  // The output may go away first (`npm run demo | tee log`, then Ctrl-C kills
  // tee too): a write then fails with EPIPE, which must not stop the
  // supervisor before it has stopped its children.
  process.stdout.on("error", () => {});
  process.stderr.on("error", () => {});
  supervise().then(
    (code) => {
      if (process.connected) process.disconnect?.();
      process.exit(code);
    },
    (error: unknown) => {
      say(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      process.exit(1);
    },
  );
} else {
  launch();
}
