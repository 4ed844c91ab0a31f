/**
 * The benchmark scenarios, run in this order. Each one starts its processes
 * (registering their stop in `ctx.scope`), waits until they are ready, and says
 * what to put under load and which processes' CPU a request costs. The load
 * generator's own CPU is never counted. The gateway scenarios also check, from
 * the gateway's /metrics after the runs, that the expected side served.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import {
  freePort,
  freePortPair,
  type NatsServer,
  startNatsServer,
} from "../../src/devtools/nats-server.js";
import { type CheckResult, checkGateway, type GatewayExpectation } from "./gateway-check.js";
import type { LoadTarget } from "./load.js";
import { REGION, USER_JSON, USER_RECORD } from "./payload.js";
import {
  benchScript,
  type Child,
  delay,
  type HttpProbe,
  type Scope,
  spawnChild,
  spawnNodeScript,
  track,
  waitForHttp,
  waitForLine,
} from "./processes.js";
import { parsePrometheus } from "./prom.js";
import { BASELINE, FLOOR } from "./ratios.js";
import { writeRoutesFor } from "./routes-file.js";

export interface ScenarioContext {
  /** Stops everything the scenario started, once it is over (also on error or Ctrl-C). */
  readonly scope: Scope;
  readonly root: string;
  /** Where the servers' output goes (files named after them); also the routes copies. */
  readonly logDir: string;
}

export interface RunningScenario {
  load: LoadTarget;
  /** Processes whose CPU time counts, by name (each with its descendants). */
  cpu: Record<string, number>;
  /**
   * After the measured runs: checks that the scenario measured what it is
   * meant to (e.g. from the gateway's /metrics); a problem marks it invalid.
   */
  check?(): Promise<CheckResult>;
}

export interface Scenario {
  readonly name: string;
  readonly description: string;
  /** Starts a nats-server (the runner checks that one is installed). */
  readonly usesNats: boolean;
  /**
   * The scenario this one is compared with: when both run, they start
   * together and their measured runs alternate (see `interleavedGroups`).
   */
  readonly interleaveWith?: string;
  /**
   * After the measured runs, one more paced to about half of their median
   * req/s, for the tail latency at half load (p99 / p50).
   */
  readonly halfLoad?: boolean;
  /** Why the scenario cannot run here (printed as "skipped: ..."), or undefined. */
  skip?(ctx: ScenarioContext): string | undefined;
  start(ctx: ScenarioContext): Promise<RunningScenario>;
}

const GATEWAY_CLI = "dist/src/cli/main.js";
/** The route every gateway scenario serves (bench/routes*.yaml). */
const ROUTE = "users.create";
const USERS_PATH = `/v1/regions/${REGION}/users`;

/**
 * The request every HTTP scenario sends, whatever it targets: the user record,
 * its content type, and an `x-user-id` header (the sticky key of the split
 * routes; the others ignore it), so the scenarios differ only by the server.
 */
const REQUEST_HEADERS = { "content-type": "application/json", "x-user-id": USER_RECORD.id };

/** An HTTP POST of the user record: both the readiness probe and the wrk target. */
function postUser(url: string): LoadTarget & { kind: "wrk" } & HttpProbe {
  return { kind: "wrk", method: "POST", url, body: USER_JSON, headers: REQUEST_HEADERS, check };
}

/** A benchmark of wrong answers proves nothing: the answer must be the user record. */
function check(body: string): string | undefined {
  try {
    const user = JSON.parse(body) as { email?: unknown; region?: unknown };
    if (user.email !== USER_RECORD.email) return "the body is not the user record";
    return user.region === REGION ? undefined : "the record's region is not the path's";
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

/** bench/legacy-backend.ts on a free port, once it listens. */
async function startLegacy(ctx: ScenarioContext): Promise<{ child: Child; url: string }> {
  const port = await freePort();
  const child = await startNode(
    ctx,
    "legacy-backend",
    benchScript("legacy-backend"),
    ["--port", String(port)],
    "ready",
  );
  return { child, url: `http://127.0.0.1:${port}` };
}

interface Gateway {
  child: Child;
  /** e.g. http://127.0.0.1:41234 */
  url: string;
  adminUrl: string;
}

/**
 * `turnout serve` on `config` (a path relative to the repository root, or
 * absolute), on free ports, with the NATS server given on the command line.
 */
async function startGateway(
  ctx: ScenarioContext,
  nats: NatsServer,
  config: string,
  extraArgs: readonly string[] = [],
): Promise<Gateway> {
  const [port, adminPort] = await freePortPair();
  const child = await spawnChild(
    "gateway",
    process.execPath,
    [
      join(ctx.root, GATEWAY_CLI),
      "serve",
      "--config",
      config,
      "--nats-url",
      nats.url,
      "--port",
      String(port),
      "--admin-port",
      String(adminPort),
      "--host",
      "127.0.0.1",
      ...extraArgs,
    ],
    {
      cwd: ctx.root,
      logFile: join(ctx.logDir, "gateway.log"),
      // Fastify logs two lines per request at "info": the echo server logs none.
      env: { ...process.env, TURNOUT_LOG_LEVEL: process.env["TURNOUT_LOG_LEVEL"] ?? "warn" },
    },
  );
  ctx.scope.defer("gateway", () => child.stop());
  return { child, url: `http://127.0.0.1:${port}`, adminUrl: `http://127.0.0.1:${adminPort}` };
}

/** The check of a gateway scenario: its /metrics read after the runs. */
function gatewayCheck(gateway: Gateway, expect: Omit<GatewayExpectation, "route">) {
  return async (): Promise<CheckResult> => {
    // Mirrors of the last requests finish after their client's answer.
    await delay(500);
    const res = await fetch(`${gateway.adminUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) return { summary: "", problem: `GET /metrics answered ${res.status}` };
    return checkGateway(parsePrometheus(await res.text()), { route: ROUTE, ...expect });
  };
}

function gatewayMissing(ctx: ScenarioContext): string | undefined {
  return existsSync(join(ctx.root, GATEWAY_CLI))
    ? undefined
    : `gateway not built (${GATEWAY_CLI} missing)`;
}

/** The gateway's NATS path alone; `gatewayArgs` are extra `turnout serve` flags. */
function gatewayNatsScenario(
  name: string,
  description: string,
  gatewayArgs: readonly string[] = [],
): Scenario {
  return {
    name,
    description,
    usesNats: true,
    // Run for run beside the baseline: this machine's speed drifts by 2x or more
    // within minutes, and the ratio must compare like with like.
    interleaveWith: BASELINE,
    halfLoad: true,
    skip: gatewayMissing,
    async start(ctx) {
      const nats = await startNats(ctx);
      const worker = await startWorker(ctx, nats);
      const gateway = await startGateway(ctx, nats, "bench/routes.yaml", gatewayArgs);
      const target = postUser(`${gateway.url}${USERS_PATH}`);
      await waitForReady(gateway.adminUrl);
      // The route itself is the probe: ready means gateway, NATS and worker all answer.
      await waitForHttp(target, [gateway.child, worker], 30_000);
      return {
        load: target,
        cpu: { gateway: gateway.child.pid, "nats-server": nats.process.pid!, worker: worker.pid },
        check: gatewayCheck(gateway, { side: "nats", mirrored: false }),
      };
    },
  };
}

/**
 * Until `/readyz` says ready, a request could be answered 503 (NATS not
 * connected yet) and spoil the scenario's check, which counts every answer.
 * Under --workers fresh connections go round-robin over the processes, so a
 * run of ready answers means every one is ready (bounded: 20 s).
 */
async function waitForReady(adminUrl: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (let inARow = 0; inARow < 8; ) {
    if (Date.now() > deadline) throw new Error(`${adminUrl}/readyz: not every worker got ready`);
    const res = await fetch(`${adminUrl}/readyz`, {
      headers: { connection: "close" },
      signal: AbortSignal.timeout(1000),
    }).catch(() => undefined);
    await res?.arrayBuffer();
    inARow = res?.ok === true ? inARow + 1 : 0;
    if (inARow === 0) await delay(100);
  }
}

export const SCENARIOS: readonly Scenario[] = [
  {
    name: "fastify-echo",
    description: "plain Fastify, POST /echo parses the JSON body and answers it",
    usesNats: false,
    // The tail of the ceiling under the same paced load: the gateways' tails compare with it.
    halfLoad: true,
    async start(ctx) {
      const port = await freePort();
      const echo = await startNode(ctx, "echo-server", benchScript("echo-server"), [
        "--port",
        String(port),
      ]);
      // The echo answers the body as sent: the record without the path's region.
      const target = { ...postUser(`http://127.0.0.1:${port}/echo`), check: echoCheck };
      await waitForHttp(target, [echo]);
      return { load: target, cpu: { "echo-server": echo.pid } };
    },
  },
  {
    name: "legacy-direct",
    description: "plain node:http legacy backend, POST /v1/regions/:region/users, no gateway",
    usesNats: false,
    async start(ctx) {
      const legacy = await startLegacy(ctx);
      const target = postUser(`${legacy.url}${USERS_PATH}`);
      await waitForHttp(target, [legacy.child]);
      return { load: target, cpu: { "legacy-backend": legacy.child.pid } };
    },
  },
  gatewayNatsScenario(
    "gateway-nats",
    "turnout serve -> NATS request/reply -> bench worker (protobuf), no legacy",
  ),
  gatewayNatsScenario(
    "gateway-nats-2w",
    "as gateway-nats, with --workers 2 (one gateway process per core)",
    ["--workers", "2"],
  ),
  {
    name: FLOOR,
    description:
      "the least an HTTP -> NATS gateway does (Fastify, classic protobufjs, Turnout's NATS requester) -> bench worker",
    usesNats: true,
    interleaveWith: BASELINE,
    async start(ctx) {
      const nats = await startNats(ctx);
      const worker = await startWorker(ctx, nats);
      const port = await freePort();
      const floor = await startNode(
        ctx,
        "floor-gateway",
        benchScript("floor-gateway"),
        ["--nats-url", nats.url, "--port", String(port)],
        "ready",
      );
      const target = postUser(`http://127.0.0.1:${port}${USERS_PATH}`);
      await waitForHttp(target, [floor, worker]);
      return {
        load: target,
        cpu: { "floor-gateway": floor.pid, "nats-server": nats.process.pid!, worker: worker.pid },
      };
    },
  },
  natsWithLegacyScenario({
    name: "gateway-nats-split",
    description: "as gateway-nats, on a route with a legacy upstream at nats 100, sticky x-user-id",
    routes: "bench/routes-split.yaml",
    mirrored: false,
    // With the baseline's group, so also run for run beside gateway-nats.
    interleaveWith: BASELINE,
  }),
  {
    name: "gateway-legacy",
    description: "turnout serve -> undici -> legacy backend (route at nats 0)",
    usesNats: true,
    skip: gatewayMissing,
    async start(ctx) {
      // The gateway always has its NATS connection; here it carries no request.
      const nats = await startNats(ctx);
      const legacy = await startLegacy(ctx);
      const config = writeRoutesFor(
        ctx.root,
        "bench/routes-legacy.yaml",
        { users: legacy.url },
        ctx.logDir,
      );
      const gateway = await startGateway(ctx, nats, config);
      const target = postUser(`${gateway.url}${USERS_PATH}`);
      await waitForReady(gateway.adminUrl);
      await waitForHttp(target, [gateway.child, legacy.child], 30_000);
      return {
        load: target,
        cpu: {
          gateway: gateway.child.pid,
          "legacy-backend": legacy.child.pid,
          "nats-server": nats.process.pid!,
        },
        check: gatewayCheck(gateway, { side: "legacy", mirrored: false }),
      };
    },
  },
  natsWithLegacyScenario({
    name: "gateway-shadow",
    description: "as gateway-nats-split, every request also mirrored to the legacy backend",
    routes: "bench/routes-shadow.yaml",
    mirrored: true,
  }),
  {
    name: "nats-raw",
    description: "Node client request/reply straight to the bench worker, no HTTP (reference)",
    usesNats: true,
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

/**
 * `selected` (in order) cut into the groups the runner runs together: each
 * scenario with those selected that name it in `interleaveWith`, at its place;
 * the others alone. A scenario whose partner is not selected runs alone.
 */
export function interleavedGroups<S extends Pick<Scenario, "name" | "interleaveWith">>(
  selected: readonly S[],
): S[][] {
  const groups: S[][] = [];
  const placed = new Set<string>();
  for (const s of selected) {
    if (placed.has(s.name)) continue;
    const group = [s, ...selected.filter((p) => p.interleaveWith === s.name && p !== s)].filter(
      (g) => !placed.has(g.name),
    );
    for (const g of group) placed.add(g.name);
    groups.push(group);
  }
  return groups;
}

function echoCheck(body: string): string | undefined {
  try {
    const user = JSON.parse(body) as { email?: unknown };
    return user.email === USER_RECORD.email ? undefined : "the body is not the user record";
  } catch {
    return "the body is not JSON";
  }
}

/**
 * The NATS path on a route that also has a legacy upstream: the worker serves,
 * the legacy backend runs (and is counted) whether or not it gets mirrors.
 */
function natsWithLegacyScenario(options: {
  name: string;
  description: string;
  routes: string;
  mirrored: boolean;
  interleaveWith?: string;
}): Scenario {
  return {
    name: options.name,
    description: options.description,
    usesNats: true,
    ...(options.interleaveWith === undefined ? {} : { interleaveWith: options.interleaveWith }),
    skip: gatewayMissing,
    async start(ctx) {
      const nats = await startNats(ctx);
      const worker = await startWorker(ctx, nats);
      const legacy = await startLegacy(ctx);
      const config = writeRoutesFor(ctx.root, options.routes, { users: legacy.url }, ctx.logDir);
      const gateway = await startGateway(ctx, nats, config);
      const target = postUser(`${gateway.url}${USERS_PATH}`);
      await waitForReady(gateway.adminUrl);
      await waitForHttp(target, [gateway.child, worker, legacy.child], 30_000);
      return {
        load: target,
        cpu: {
          gateway: gateway.child.pid,
          "nats-server": nats.process.pid!,
          worker: worker.pid,
          "legacy-backend": legacy.child.pid,
        },
        check: gatewayCheck(gateway, { side: "nats", mirrored: options.mirrored }),
      };
    },
  };
}
