/**
 * The `/admin` API on the admin listener. Every call needs
 * `Authorization: Bearer <TURNOUT_ADMIN_TOKEN>`: without a configured token the
 * API is locked (403), a missing or wrong token is 401. Errors are
 * problem+json like the gateway's.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import {
  type DeadLetterFilter,
  type DeadLetterStore,
  parseSince,
  shownLetter,
} from "../backends/nats/dead-letters.js";
import { jsonText } from "../codec/json-text.js";
import type { RouteConfig } from "../config/types.js";
import { TurnoutError } from "../errors.js";
import type { MismatchLog } from "../shadow/mismatch-log.js";
import type { AdminToken } from "./admin-token.js";
import { checkRouteAllows, parseCutoverChange, parseRollbackRequest } from "./cutover-rules.js";
import type { CutoverState } from "./cutover-state.js";
import type { CutoverBucket, CutoverRevision, CutoverStore } from "./cutover-store.js";
import { type PlanStatus, planStatus } from "./plan-status.js";

export interface AdminApiDeps {
  readonly token: AdminToken;
  readonly routeNames: readonly string[];
  readonly mismatches: MismatchLog;
  /** The live cutover state and its KV store: `/admin/routes` and the cutover calls. */
  readonly cutover?: {
    readonly state: CutoverState;
    readonly store: CutoverStore;
    /** The plans as this replica sees them (`blocked` shows on the leader only). */
    readonly plans?: { status(route: RouteConfig): PlanStatus | undefined };
  };
  /** `GET /admin/dlq`, `POST /admin/dlq/replay` and `DELETE /admin/dlq/:seq`. */
  readonly deadLetters?: Pick<DeadLetterStore, "list" | "replay" | "delete">;
}

/** `by` of a change made through the API when the body names nobody. */
export const ADMIN_API_BY = "admin-api";

export function registerAdminApi(app: FastifyInstance, deps: AdminApiDeps): void {
  const routes = new KnownRoutes(deps.routeNames);
  app.register(async (admin) => {
    admin.addHook("onRequest", async (req) => authorize(deps.token, req));
    // The body is parsed here, so that bad JSON is a problem naming the body;
    // JSON only (else 415): Fastify would hand a text/plain body over as well.
    admin.removeAllContentTypeParsers();
    admin.addContentTypeParser("application/json", { parseAs: "buffer" }, (req, body, done) => {
      const text = jsonText(req.headers["content-type"], body as Buffer);
      if (!(text instanceof TurnoutError)) done(null, text);
      else if (text.code !== "TURNOUT_ERR_BAD_JSON") done(text);
      // Named as every other problem of the body is.
      else done(new TurnoutError(text.code, text.message, { field: "body" }));
    });
    admin.addContentTypeParser("*", (req, _payload, done) => done(notJson(req), undefined));
    admin.get("/admin/routes/:name/mismatches", async (req) => {
      const route = routes.named(req);
      return { route, mismatches: deps.mismatches.list(route) };
    });
    if (deps.deadLetters !== undefined) registerDeadLetters(admin, deps.deadLetters, routes);
    if (deps.cutover !== undefined) registerCutover(admin, deps.cutover, routes);
  });
}

function notJson(req: FastifyRequest): TurnoutError {
  const type = req.headers["content-type"];
  const sent =
    type === undefined || type.trim() === ""
      ? "a body without a Content-Type"
      : `content type ${JSON.stringify(type)}`;
  return new TurnoutError(
    "TURNOUT_ERR_UNSUPPORTED_MEDIA_TYPE",
    `${sent} is not supported: the admin API takes application/json, in UTF-8`,
  );
}

/** The route names the API knows; a call naming another is a 404. */
class KnownRoutes {
  readonly #names: ReadonlySet<string>;

  constructor(names: readonly string[]) {
    this.#names = new Set(names);
  }

  has(name: string): boolean {
    return this.#names.has(name);
  }

  /** The `:name` of the call's path. */
  named(req: FastifyRequest): string {
    const name = (req.params as { name: string }).name;
    if (!this.#names.has(name)) {
      throw new TurnoutError("TURNOUT_ERR_NOT_FOUND", `no route named "${name}"`, {
        field: "name",
      });
    }
    return name;
  }
}

function registerDeadLetters(
  admin: FastifyInstance,
  deadLetters: NonNullable<AdminApiDeps["deadLetters"]>,
  routes: KnownRoutes,
): void {
  admin.get("/admin/dlq", async (req) => {
    const filter = dlqFilter(req.query as Record<string, unknown>, routes);
    // One more than asked: whether there are more to page through.
    const letters = await deadLetters.list({ ...filter, limit: filter.limit + 1 });
    const page = letters.slice(0, filter.limit);
    const more = letters.length > filter.limit;
    return { deadLetters: page.map(shownLetter), more, after: more ? page.at(-1)?.seq : undefined };
  });
  admin.post("/admin/dlq/replay", async (req) => {
    refuseQuery(req.query as Record<string, unknown>);
    const filter = dlqFilter(optionalJsonBody(req.body), routes);
    const { outcomes, more, after, stopped } = await deadLetters.replay(filter);
    req.log.info(
      { route: filter.route, replayed: outcomes.length, more, stopped },
      "dead letters replayed through the admin API",
    );
    // Failed letters stay where they are: the next page must start after them.
    return { outcomes, more, after: more ? after : undefined, stopped };
  });
  admin.delete("/admin/dlq/:seq", async (req) => {
    const seq = dlqSeq((req.params as { seq: string }).seq, "seq");
    const letter = await deadLetters.delete(seq);
    if (letter === undefined) {
      throw new TurnoutError("TURNOUT_ERR_NOT_FOUND", `no dead letter at sequence ${seq}`, {
        field: "seq",
      });
    }
    const deleted = { seq, route: letter.route, requestId: letter.requestId };
    req.log.info(deleted, "dead letter deleted through the admin API");
    return { deleted };
  });
}

function registerCutover(
  admin: FastifyInstance,
  cutover: NonNullable<AdminApiDeps["cutover"]>,
  routes: KnownRoutes,
): void {
  const { state, store } = cutover;
  const configOf = (name: string): RouteConfig => {
    const config = store.route(name);
    if (config === undefined) throw new Error(`route ${name} has no configuration`);
    return config;
  };

  admin.get("/admin/routes", async () => ({
    cutover: store.mode,
    routes: state.routes().map((name) => routeView(configOf(name), cutover)),
  }));

  admin.get("/admin/routes/:name/cutover", async (req) => {
    return routeView(configOf(routes.named(req)), cutover);
  });

  admin.put("/admin/routes/:name/cutover", async (req) => {
    const name = routes.named(req);
    const body = parseJsonBody(req.body);
    const config = configOf(name);
    // Refused values are a 400 whatever the store's mode: checked before the KV
    // against routes.yaml's values (the rules hold for them), then again below.
    parseCutoverChange(body, config, config.cutover, ADMIN_API_BY);
    // An omitted field keeps the KV's value at write time, not this replica's copy.
    const written = await liveBucket(store).change(config, (live) =>
      parseCutoverChange(body, config, live, ADMIN_API_BY),
    );
    req.log.info({ route: name, ...written }, "cutover changed through the admin API");
    return { route: name, ...written };
  });

  admin.get("/admin/routes/:name/cutover/history", async (req) => {
    const name = routes.named(req);
    return { route: name, history: await liveBucket(store).history(name) };
  });

  admin.post("/admin/routes/:name/cutover/rollback", async (req) => {
    const name = routes.named(req);
    const request = parseRollbackRequest(optionalJsonBody(req.body), ADMIN_API_BY);
    const { from, to } = await liveBucket(store).rollback(configOf(name), request, (values) =>
      checkRouteAllows(configOf(name), values),
    );
    req.log.info({ route: name, reason: to.reason }, "cutover rolled back through the admin API");
    return { route: name, rolledBack: from, ...to };
  });
}

/**
 * `route`, `since` (see parseSince), `limit` and `after` (the previous page's)
 * of a dead-letter call, from the query or the body. Any other key is refused:
 * a misspelt filter must not widen a replay to every letter.
 */
function dlqFilter(
  source: Record<string, unknown>,
  routes: KnownRoutes,
): DeadLetterFilter & { limit: number } {
  for (const key of Object.keys(source)) {
    if (!DLQ_FILTERS.has(key)) {
      const message = `${key} is not a filter (route, since, limit, after)`;
      throw new TurnoutError("TURNOUT_ERR_BAD_PARAM", message, { field: key });
    }
  }
  const { route, since } = source;
  if (route !== undefined && (typeof route !== "string" || !routes.has(route))) {
    throw new TurnoutError("TURNOUT_ERR_NOT_FOUND", `no route named "${String(route)}"`, {
      field: "route",
    });
  }
  if (since !== undefined && typeof since !== "string") {
    throw new TurnoutError("TURNOUT_ERR_BAD_PARAM", "since must be a string", { field: "since" });
  }
  const sinceDate = since === undefined ? undefined : parseSince(since, Date.now());
  const after = source.after === undefined ? undefined : dlqSeq(source.after, "after");
  return { route, since: sinceDate, after, limit: dlqLimit(source.limit) };
}

const DLQ_FILTERS = new Set(["route", "since", "limit", "after"]);

/**
 * The replay reads its filters from the body only: a query (as GET /admin/dlq
 * takes it) would be ignored and widen the replay to every letter, so any
 * query parameter is refused.
 */
function refuseQuery(query: Record<string, unknown>): void {
  const [key] = Object.keys(query);
  if (key === undefined) return;
  throw new TurnoutError(
    "TURNOUT_ERR_BAD_PARAM",
    `query parameter ${JSON.stringify(key)} refused: the replay takes its filters (route, since, limit, after) in the JSON body`,
    { field: key },
  );
}

/** A stream sequence: `after` (0 is the start) or a letter's `:seq`. */
function dlqSeq(value: unknown, field: "after" | "seq"): number {
  const text = typeof value === "number" ? String(value) : value;
  if (typeof text === "string" && /^\d{1,15}$/.test(text)) return Number(text);
  throw new TurnoutError(
    "TURNOUT_ERR_BAD_PARAM",
    `${field} must be a stream sequence (a whole number), got ${JSON.stringify(value)}`,
    { field },
  );
}

/**
 * Letters per call: each is read and held in the serving process, so a list or
 * replay after a storm (the stream keeps up to 1 GiB) goes page by page.
 */
const DLQ_PAGE_DEFAULT = 100;
const DLQ_PAGE_MAX = 1000;

function dlqLimit(value: unknown): number {
  if (value === undefined) return DLQ_PAGE_DEFAULT;
  const text = typeof value === "number" ? String(value) : value;
  if (typeof text === "string" && /^\d+$/.test(text)) {
    const limit = Number(text);
    if (limit >= 1 && limit <= DLQ_PAGE_MAX) return limit;
  }
  throw new TurnoutError(
    "TURNOUT_ERR_BAD_PARAM",
    `limit must be a whole number from 1 to ${DLQ_PAGE_MAX}, got ${JSON.stringify(value)}`,
    { field: "limit" },
  );
}

function routeView(
  route: RouteConfig,
  { state, store, plans }: NonNullable<AdminApiDeps["cutover"]>,
) {
  const { name } = route;
  const live = state.of(name);
  const latest = live.source === "live" ? store.latest(name) : undefined;
  const record: Partial<CutoverRevision> = latest ?? {};
  return {
    name,
    nats: live.nats,
    shadow: live.shadow,
    source: live.source,
    by: record.by,
    reason: record.reason,
    at: record.at,
    revision: record.revision,
    plan: plans === undefined ? planStatus(route, latest) : plans.status(route),
  };
}

function liveBucket(store: CutoverStore): CutoverBucket {
  const bucket = store.bucket;
  if (bucket !== undefined && store.mode === "live") return bucket;
  const why =
    store.mode === "file"
      ? "the NATS server has no JetStream: this gateway runs on routes.yaml's values"
      : "the live cutover state is not loaded yet";
  throw new TurnoutError("TURNOUT_ERR_CUTOVER_UNAVAILABLE", why);
}

/** A body that may be left out: none is `{}`; JSON other than an object is refused. */
function optionalJsonBody(raw: unknown): Record<string, unknown> {
  if (raw === undefined || raw === "") return {};
  const body = parseJsonBody(raw);
  if (typeof body === "object" && body !== null && !Array.isArray(body)) {
    return body as Record<string, unknown>;
  }
  throw new TurnoutError("TURNOUT_ERR_BAD_JSON", "the body must be a JSON object", {
    field: "body",
  });
}

function parseJsonBody(raw: unknown): unknown {
  if (typeof raw !== "string") {
    throw new TurnoutError("TURNOUT_ERR_BAD_JSON", "send a JSON body (application/json)", {
      field: "body",
    });
  }
  try {
    return JSON.parse(raw);
  } catch (error) {
    throw new TurnoutError(
      "TURNOUT_ERR_BAD_JSON",
      `body is not JSON: ${(error as Error).message}`,
      {
        field: "body",
        cause: error,
      },
    );
  }
}

export function authorize(token: AdminToken, req: FastifyRequest): void {
  const result = token.checkBearer(req.headers.authorization);
  if (result === "ok") return;
  if (result === "unconfigured") {
    throw new TurnoutError(
      "TURNOUT_ERR_ADMIN_LOCKED",
      "the admin API is locked: set TURNOUT_ADMIN_TOKEN",
    );
  }
  throw new TurnoutError("TURNOUT_ERR_UNAUTHORIZED", `${result} bearer token`);
}
