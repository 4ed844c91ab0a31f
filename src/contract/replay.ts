/**
 * Replays samples through the gateway's NATS path, in process: the real
 * Fastify gateway (`buildGateway`, no listening port, `inject`) on a copy of
 * the route table where every route is served by NATS, and the real NATS
 * connection. Nothing live is touched: no legacy upstream, no cutover KV, no
 * plan, no dead letters, metrics on a registry of their own. Each answer is
 * compared with the recorded one exactly as the shadow compares (status, then
 * JSON normalized through the route's type, minus `compare.ignore`).
 */
import type { FastifyInstance } from "fastify";
import type protobuf from "protobufjs";
import { LegacyUpstreams } from "../backends/legacy/upstreams.js";
import type { Requester } from "../backends/nats/link.js";
import type { GatewayConfig, RouteConfig } from "../config/types.js";
import { AdminToken } from "../control/admin-token.js";
import { CutoverState } from "../control/cutover-state.js";
import { GatewayMetrics } from "../observability/metrics.js";
import { buildGateway } from "../server/gateway.js";
import {
  type Answer,
  compareAnswers,
  compileIgnorePaths,
  compileNormalizer,
  type FieldDiff,
  type IgnorePaths,
  type Normalizer,
  PLAIN_JSON,
} from "../shadow/compare.js";
import { Mirrors } from "../shadow/mirror.js";
import { MismatchLog } from "../shadow/mismatch-log.js";
import type { Sample } from "./samples.js";

export interface SampleResult {
  readonly sample: Sample;
  /** The route that served it; undefined when none ran (no route matches, or the router refused the request first). */
  readonly route: string | undefined;
  readonly result: "ok" | "fail";
  /** The gateway's answer status. */
  readonly status: number;
  /** `code` and `detail` of the gateway's problem+json answer, when it was one. */
  readonly problem: { readonly code: string; readonly detail: string } | undefined;
  /**
   * The start of the answer's body when its status differs from the recorded
   * one and it is no problem+json (a worker's error in the route's error type
   * says why there, not in a code).
   */
  readonly answerBody?: string;
  readonly diffs: readonly FieldDiff[];
  /** More differences than were kept. */
  readonly truncated: boolean;
}

export interface ReplayDeps {
  readonly config: GatewayConfig;
  readonly root: protobuf.Root;
  readonly requester: Requester;
  /** Samples in flight at once (1: one after the other). */
  readonly concurrency: number;
}

/** Set on each injected request so the hook can tell which route served which sample. */
const SAMPLE_HEADER = "turnout-contract-sample";
/** Headers that described the recorded body's transfer, not the body re-sent here. */
const TRANSFER_HEADERS = new Set(["content-length", "transfer-encoding", "connection", "host"]);
/** Never reached by any real window: the breaker must not let one sample's failure change the next's. */
const NEVER = Number.MAX_SAFE_INTEGER;

/**
 * The table as if every route were cut over: no legacy (so no fallback, no
 * mirror), no plan, no rate limit and a breaker that never opens, so each
 * sample's result depends only on what the workers answer to it.
 */
export function contractConfig(config: GatewayConfig): GatewayConfig {
  const routes = config.routes.map(
    (route): RouteConfig => ({
      ...route,
      legacy: undefined,
      cutover: { nats: 100, shadow: 0, sticky: route.cutover.sticky },
      rateLimit: undefined,
      breaker: { ...route.breaker, volume: NEVER },
    }),
  );
  return { ...config, legacy: {}, routes };
}

export async function replaySamples(
  samples: readonly Sample[],
  deps: ReplayDeps,
): Promise<SampleResult[]> {
  const config = contractConfig(deps.config);
  const comparers = new Map(config.routes.map((r) => [r.name, routeComparer(deps.root, r)]));
  const servedBy = new Map<string, string>();
  const app = contractGateway(config, deps.root, deps.requester);
  app.addHook("onRequest", (req, _reply, done) => {
    const routeName = req.routeOptions.config.routeName;
    const key = req.headers[SAMPLE_HEADER];
    if (routeName !== undefined && typeof key === "string") servedBy.set(key, routeName);
    done();
  });
  try {
    const results: SampleResult[] = new Array(samples.length);
    await eachBounded(samples.length, deps.concurrency, async (index) => {
      const sample = samples[index]!;
      const answer = await send(app, sample, String(index));
      const route = servedBy.get(String(index));
      results[index] = judge(sample, route, answer, comparerFor(route, answer, comparers));
    });
    return results;
  } finally {
    await app.close();
  }
}

interface Comparer {
  readonly normalizer: Normalizer;
  readonly ignore: IgnorePaths;
}

/** Answers meaning no route matches: the sample cannot be judged against any. */
const NO_ROUTE_CODES = new Set(["TURNOUT_ERR_NOT_FOUND", "TURNOUT_ERR_METHOD_NOT_ALLOWED"]);

/** Compared as plain JSON: no route's types to normalise by. */
const UNROUTED: Comparer = { normalizer: PLAIN_JSON, ignore: compileIgnorePaths([]) };

/**
 * The route's comparer; for a request the router refused before any route
 * ran (a bad percent-escape, a param over the length limit), plain JSON, so a
 * recording of that same refusal can pass; none when no route matches at all.
 */
function comparerFor(
  route: string | undefined,
  answer: Answer,
  comparers: ReadonlyMap<string, Comparer>,
): Comparer | undefined {
  if (route !== undefined) return comparers.get(route);
  const code = problemOf(answer)?.code;
  // An answer to HEAD has no body to carry a code: its status tells.
  if (code === undefined && isBodiless(answer)) {
    return NO_ROUTE_STATUSES.has(answer.status) ? undefined : UNROUTED;
  }
  return code === undefined || NO_ROUTE_CODES.has(code) ? undefined : UNROUTED;
}

/** The statuses of NO_ROUTE_CODES. */
const NO_ROUTE_STATUSES = new Set([404, 405]);

function isBodiless(answer: Answer): boolean {
  return answer.body === undefined || answer.body.length === 0;
}

function routeComparer(root: protobuf.Root, route: RouteConfig): Comparer {
  return {
    normalizer: compileNormalizer(root, route),
    ignore: compileIgnorePaths(route.compare.ignore),
  };
}

function contractGateway(
  config: GatewayConfig,
  root: protobuf.Root,
  requester: Requester,
): FastifyInstance {
  const metrics = new GatewayMetrics({ processMetrics: false });
  return buildGateway({
    config,
    root,
    requester,
    legacy: new LegacyUpstreams(config.routes),
    cutover: new CutoverState(config.routes),
    mirrors: new Mirrors(root, config.routes, { metrics, log: new MismatchLog() }),
    adminToken: new AdminToken(undefined),
    metrics,
    logger: false,
  });
}

async function send(app: FastifyInstance, sample: Sample, key: string): Promise<Answer> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(sample.headers)) {
    if (!TRANSFER_HEADERS.has(name)) headers[name] = value;
  }
  if (sample.body !== undefined) headers["content-type"] ??= "application/json";
  headers[SAMPLE_HEADER] = key;
  const res = await app.inject({
    method: sample.method,
    url: sample.path,
    headers,
    ...(sample.body === undefined ? {} : { payload: sample.body }),
  });
  const contentType = res.headers["content-type"];
  return {
    status: res.statusCode,
    body: res.rawPayload,
    contentType: typeof contentType === "string" ? contentType : undefined,
  };
}

function judge(
  sample: Sample,
  route: string | undefined,
  answer: Answer,
  comparer: Comparer | undefined,
): SampleResult {
  const base = { sample, route, status: answer.status, problem: problemOf(answer) };
  if (comparer === undefined) return { ...base, result: "fail", diffs: [], truncated: false };
  const recorded: Answer = {
    status: sample.status,
    body: sample.response,
    contentType: sample.response === undefined ? undefined : "application/json",
  };
  const comparison = compareAnswers(recorded, answer, comparer.normalizer, comparer.ignore);
  if (comparison.result === "match") return { ...base, result: "ok", diffs: [], truncated: false };
  const statusChanged = answer.status !== sample.status;
  return {
    ...base,
    result: "fail",
    diffs: comparison.diffs,
    truncated: comparison.truncated,
    ...(statusChanged && base.problem === undefined && !isBodiless(answer)
      ? { answerBody: bodyStart(answer) }
      : {}),
  };
}

/** The first 200 characters of an answer's body, as text. */
function bodyStart(answer: Answer): string {
  const text = Buffer.from(answer.body ?? "").toString("utf8");
  return text.length <= 200 ? text : `${text.slice(0, 200)}…`;
}

/** The gateway's own error (problem+json with a TURNOUT_ERR_* code), if the answer is one. */
function problemOf(answer: Answer): SampleResult["problem"] {
  if (!answer.contentType?.startsWith("application/problem+json")) return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(answer.body ?? "").toString("utf8")) as {
      code?: unknown;
      detail?: unknown;
    };
    if (typeof parsed.code !== "string") return undefined;
    return { code: parsed.code, detail: typeof parsed.detail === "string" ? parsed.detail : "" };
  } catch {
    return undefined;
  }
}

/** Runs `task(0..count-1)` with at most `limit` running at once, in index order. */
async function eachBounded(
  count: number,
  limit: number,
  task: (index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, count)) }, lane));
}
