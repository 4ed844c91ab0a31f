/**
 * The benchmark scenarios, run in this order. Each one starts its processes
 * (registering their stop in `ctx.scope`), waits until they are ready, and says
 * what to put under load and which processes' CPU a request costs. The load
 * generator's own CPU is never counted. Adding a scenario (legacy proxy, shadow)
 * is one more entry here.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { freePort, type NatsServer, startNatsServer } from "../../src/devtools/nats-server.js";
import type { LoadTarget } from "./load.js";
import { REGION, USER_JSON, USER_RECORD } from "./payload.js";
import {
  benchScript,
  type Child,
  type HttpProbe,
  type Scope,
  spawnChild,
  spawnNodeScript,
  track,
  waitForHttp,
  waitForLine,
} from "./processes.js";

export interface ScenarioContext {
  /** Stops everything the scenario started, once it is over (also on error or Ctrl-C). */
  readonly scope: Scope;
  readonly root: string;
  /** Where the servers' output goes (files named after them). */
  readonly logDir: string;
}

export interface RunningScenario {
  load: LoadTarget;
  /** Processes whose CPU time counts, by name (each with its descendants). */
  cpu: Record<string, number>;
}

export interface Scenario {
  readonly name: string;
  readonly description: string;
  /** Why the scenario cannot run here (printed as "skipped: ..."), or undefined. */
  skip?(ctx: ScenarioContext): string | undefined;
  start(ctx: ScenarioContext): Promise<RunningScenario>;
}

const JSON_HEADERS = { "content-type": "application/json" };
const GATEWAY_CLI = "dist/src/cli/main.js";

/** An HTTP POST of the user record: both the readiness probe and the wrk target. */
function postUser(url: string): LoadTarget & { kind: "wrk" } & HttpProbe {
  return { kind: "wrk", method: "POST", url, body: USER_JSON, headers: JSON_HEADERS, check };
}

/** A benchmark of wrong answers proves nothing: the answer must be the user record. */
function check(body: string): string | undefined {
  try {
    const user = JSON.parse(body) as { email?: unknown };
    return user.email === USER_RECORD.email ? undefined : "the body is not the user record";
  } catch {
    return "the body is not JSON";
  }
}

async function startNats(ctx: ScenarioContext): Promise<NatsServer> {
  const nats = await startNatsServer();
  track(nats.process);
  ctx.scope.defer("nats-server", () => nats.stop());
  return nats;
}

async function startNode(
  ctx: ScenarioContext,
  name: string,
  script: string,
  args: string[],
  readyLine?: string,
): Promise<Child> {
  const logFile = join(ctx.logDir, `${name}.log`);
  const child = await spawnNodeScript(name, script, args, { logFile });
  ctx.scope.defer(name, () => child.stop());
  if (readyLine !== undefined) await waitForLine(child, readyLine);
  return child;
}

function startWorker(ctx: ScenarioContext, nats: NatsServer): Promise<Child> {
  return startNode(ctx, "worker", benchScript("worker"), ["--nats-url", nats.url], "ready");
}

export const SCENARIOS: readonly Scenario[] = [
  {
    name: "fastify-echo",
    description: "plain Fastify, POST /echo parses the JSON body and answers it",
    async start(ctx) {
      const port = await freePort();
      const echo = await startNode(ctx, "echo-server", benchScript("echo-server"), [
        "--port",
        String(port),
      ]);
      const target = postUser(`http://127.0.0.1:${port}/echo`);
      await waitForHttp(target, [echo]);
      return { load: target, cpu: { "echo-server": echo.pid } };
    },
  },
  {
    name: "gateway-nats",
    description: "turnout serve -> NATS request/reply -> bench worker (protobuf)",
    skip: (ctx) =>
      existsSync(join(ctx.root, GATEWAY_CLI))
        ? undefined
        : `gateway not built (${GATEWAY_CLI} missing)`,
    async start(ctx) {
      const nats = await startNats(ctx);
      const worker = await startWorker(ctx, nats);
      const [port, adminPort] = [await freePort(), await freePort()];
      const gateway = await spawnChild(
        "gateway",
        process.execPath,
        [
          join(ctx.root, GATEWAY_CLI),
          "serve",
          "--config",
          "bench/routes.yaml",
          "--nats-url",
          nats.url,
          "--port",
          String(port),
          "--admin-port",
          String(adminPort),
          "--host",
          "127.0.0.1",
        ],
        {
          cwd: ctx.root,
          logFile: join(ctx.logDir, "gateway.log"),
          // Fastify logs two lines per request at "info": the echo server logs none.
          env: { ...process.env, TURNOUT_LOG_LEVEL: process.env["TURNOUT_LOG_LEVEL"] ?? "warn" },
        },
      );
      ctx.scope.defer("gateway", () => gateway.stop());
      const target = postUser(`http://127.0.0.1:${port}/v1/regions/${REGION}/users`);
      // The route itself is the probe: ready means gateway, NATS and worker all answer.
      await waitForHttp(target, [gateway, worker], 30_000);
      return {
        load: target,
        cpu: { gateway: gateway.pid, "nats-server": nats.process.pid!, worker: worker.pid },
      };
    },
  },
  {
    name: "nats-raw",
    description: "Node client request/reply straight to the bench worker, no HTTP (reference)",
    async start(ctx) {
      const nats = await startNats(ctx);
      const worker = await startWorker(ctx, nats);
      return {
        load: {
          kind: "node",
          script: "lib/nats-client",
          args: ["--nats-url", nats.url],
          describe: `node bench/lib/nats-client -> ${nats.url}`,
        },
        cpu: { "nats-server": nats.process.pid!, worker: worker.pid },
      };
    },
  },
];
