/**
 * Dead letters: a request that finally failed on NATS with no fallback (no
 * responders, not connected, timeout, breaker open, after the route's retries)
 * is kept in the JetStream stream `TURNOUT_DLQ` (created when missing, bounded
 * to 7 days and 1 GiB, oldest dropped first), one message per request on
 * `turnout.dlq.<route>`: the original protobuf payload as body, the original
 * NATS request headers (`Turnout-Route`, `X-Request-Id`, traceparent and the
 * route's forwarded headers) plus `Turnout-Subject`, `Turnout-Error-Code` and
 * `Turnout-Error`.
 *
 * Recording is fire-and-forget: it never delays nor fails the client's answer.
 * Letters come in storms (a worker pool down fails every request), so a letter
 * that cannot be stored is counted as lost and the warning is rate-limited;
 * once the stream proved unavailable it is not asked again for a while, and at
 * most `maxInFlight` letters wait for their acks at once.
 * Replay re-sends each payload as a NATS request to its original subject with
 * its original headers; a letter whose replay got an ok answer (2xx) is
 * deleted from the stream, any other outcome leaves it there for a later replay.
 */
import { type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { type MsgHdrs, type NatsConnection, headers as natsHeaders } from "@nats-io/transport-node";
import type protobuf from "protobufjs";
import { compileRouteCodec, parseJsonBody } from "../../codec/index.js";
import { parseTimestamp } from "../../codec/time.js";
import type { RouteConfig } from "../../config/types.js";
import { parseDuration } from "../../config/units.js";
import { TurnoutError } from "../../errors.js";
import type { GatewayMetrics } from "../../observability/metrics.js";
import { compileSubject } from "../../routing/subject.js";
import type { RouteInput } from "../../server/nats-pipeline.js";
import { isJetStreamMissing } from "./connection.js";
import { REQUEST_ID_HEADER, ROUTE_HEADER } from "./headers.js";
import { interpretReply } from "./reply.js";

export const DLQ_STREAM = "TURNOUT_DLQ";
export const DLQ_SUBJECT_PREFIX = "turnout.dlq.";
export const DLQ_MAX_AGE_MS = 7 * 24 * 3600 * 1000;
export const DLQ_MAX_BYTES = 1024 ** 3;
export const SUBJECT_HEADER = "Turnout-Subject";
export const ERROR_CODE_HEADER = "Turnout-Error-Code";
export const ERROR_HEADER = "Turnout-Error";

/** NATS failures that make a dead letter (when legacy does not serve instead). */
const DEAD_LETTER_CODES = new Set([
  "TURNOUT_ERR_NO_RESPONDERS",
  "TURNOUT_ERR_NOT_CONNECTED",
  "TURNOUT_ERR_TIMEOUT",
  "TURNOUT_ERR_BREAKER_OPEN",
]);

/** Headers that describe the failure, not the request: never re-sent. */
const META_HEADERS = new Set(
  [SUBJECT_HEADER, ERROR_CODE_HEADER, ERROR_HEADER].map((h) => h.toLowerCase()),
);

/** Replay timeout when the route is unknown to the caller. */
const DEFAULT_REPLAY_TIMEOUT_MS = 5000;

/** Letters waiting for their JetStream ack at once; more are lost as `overloaded`. */
export const DLQ_MAX_IN_FLIGHT = 1024;
/** After the stream proved unavailable, letters are lost without asking again for this long. */
export const DLQ_RETRY_AFTER_MS = 5000;
/** At most one "not stored" warning per this interval; the others are summed into the next. */
export const DLQ_WARN_EVERY_MS = 10_000;

/** `turnout_dead_letters_lost_total` reasons. */
export type LostReason = "overloaded" | "unavailable" | "failed";

export interface DeadLetter {
  readonly seq: number;
  readonly route: string;
  readonly requestId: string;
  readonly subject: string;
  readonly errorCode: string;
  readonly error: string;
  /** When it was stored (ISO 8601). */
  readonly at: string;
  readonly headers: Readonly<Record<string, string[]>>;
  /** The protobuf payload, base64. */
  readonly body: string;
}

export type ReplayOutcome =
  | {
      readonly seq: number;
      readonly route: string;
      readonly requestId: string;
      readonly result: "ok";
      readonly status: number;
    }
  | {
      readonly seq: number;
      readonly route: string;
      readonly requestId: string;
      readonly result: "failed";
      readonly code: string;
      readonly message: string;
    };

export interface DeadLetterFilter {
  readonly route?: string;
  /** Only letters stored at or after this time. */
  readonly since?: Date;
  /** At most this many letters, the oldest first; all when unset. */
  readonly limit?: number;
}

/**
 * A `since` filter as operators write it: an RFC 3339 time
 * ("2026-03-01T12:00:00Z"), a UTC date ("2026-03-01"), or a duration back from
 * `now` ("30m", "2h"). Anything else throws TURNOUT_ERR_BAD_PARAM naming
 * `since`: JavaScript's lenient Date parsing would read "1" as the year 2001.
 */
export function parseSince(text: string, now: number): Date {
  const trimmed = text.trim();
  if (/^\d+(\.\d+)?(ms|s|m|h)$/.test(trimmed)) return new Date(now - parseDuration(trimmed));
  const time = /^\d{4}-\d{2}-\d{2}$/.test(trimmed) ? `${trimmed}T00:00:00Z` : trimmed;
  try {
    const { seconds, nanos } = parseTimestamp(time);
    return new Date(seconds * 1000 + Math.floor(nanos / 1e6));
  } catch {
    throw new TurnoutError(
      "TURNOUT_ERR_BAD_PARAM",
      `since must be an RFC 3339 time (2026-03-01T12:00:00Z), a date (2026-03-01) or a duration back from now (30m, 2h), got ${JSON.stringify(text)}`,
      { field: "since" },
    );
  }
}

export interface ReplayOptions extends DeadLetterFilter {
  /** Per-route request timeout in ms (routes.yaml's `timeout`); default 5 s. */
  readonly timeoutOf?: (route: string) => number | undefined;
}

interface Log {
  warn(message: string): void;
}

interface CompiledRoute {
  readonly route: RouteConfig;
  readonly subjectOf: (params: Readonly<Record<string, string | undefined>>) => string;
  readonly encode: (input: RouteInput) => Uint8Array;
}

/** The gateway's dead-letter store: records failed requests, lists and replays them. */
export class DeadLetterStore {
  readonly #connection: () => NatsConnection | undefined;
  readonly #metrics: GatewayMetrics;
  readonly #log: Log;
  readonly #routes = new Map<string, CompiledRoute>();
  readonly #root: protobuf.Root;
  readonly #configs: ReadonlyMap<string, RouteConfig>;
  readonly #maxInFlight: number;
  readonly #now: () => number;
  #ensured: Promise<void> | undefined;
  /** Until then the stream is taken as unavailable (it just failed to answer). */
  #unavailableUntil = Number.NEGATIVE_INFINITY;
  #unavailableWhy = "";
  #inFlight = 0;
  #lastWarnAt = Number.NEGATIVE_INFINITY;
  #lostUnwarned = 0;

  constructor(deps: {
    connection: () => NatsConnection | undefined;
    routes: readonly RouteConfig[];
    root: protobuf.Root;
    metrics: GatewayMetrics;
    log: Log;
    /** Default DLQ_MAX_IN_FLIGHT. */
    maxInFlight?: number;
    /** Monotonic milliseconds; tests pass their own clock. */
    now?: () => number;
  }) {
    this.#connection = deps.connection;
    this.#metrics = deps.metrics;
    this.#log = deps.log;
    this.#root = deps.root;
    this.#configs = new Map(deps.routes.map((r) => [r.name, r]));
    this.#maxInFlight = deps.maxInFlight ?? DLQ_MAX_IN_FLIGHT;
    this.#now = deps.now ?? (() => performance.now());
  }

  /** Whether this failure of this route makes a dead letter. */
  static isDeadLetter(route: RouteConfig, error: unknown): boolean {
    return (
      route.mode === "request" && error instanceof TurnoutError && DEAD_LETTER_CODES.has(error.code)
    );
  }

  /**
   * Creates the stream when missing; safe to call again. After a failure the
   * next call retries; `record` waits DLQ_RETRY_AFTER_MS before it does.
   */
  async ensureStream(): Promise<void> {
    const nc = this.#connected();
    const ensured =
      this.#ensured ??
      ensureDlqStream(nc).then(
        () => undefined,
        (error: unknown) => {
          this.#ensured = undefined;
          this.#unavailableUntil = this.#now() + DLQ_RETRY_AFTER_MS;
          this.#unavailableWhy = errorMessage(error);
          throw error;
        },
      );
    this.#ensured = ensured;
    return ensured;
  }

  /** Fire-and-forget: stores the letter when `error` makes one; never throws. */
  record(route: RouteConfig, input: RouteInput, error: unknown): void {
    if (!DeadLetterStore.isDeadLetter(route, error)) return;
    if (this.#inFlight >= this.#maxInFlight) {
      this.#lost(route, input, "overloaded", `${this.#inFlight} letters already in flight`);
      return;
    }
    if (this.#now() < this.#unavailableUntil) {
      const retry = `tried again ${DLQ_RETRY_AFTER_MS / 1000} s after it failed`;
      this.#lost(route, input, "unavailable", `${this.#unavailableWhy} (${retry})`);
      return;
    }
    this.#inFlight++;
    this.#store(route, input, error as TurnoutError)
      .then(
        (lost) => {
          if (lost === undefined) this.#metrics.deadLetters.cell(route.name).inc();
          else this.#lost(route, input, lost.reason, lost.why);
        },
        (failure: unknown) => this.#lost(route, input, "failed", errorMessage(failure)),
      )
      .finally(() => this.#inFlight--);
  }

  #lost(route: RouteConfig, input: RouteInput, reason: LostReason, why: string): void {
    this.#metrics.deadLettersLost.cell(route.name, reason).inc();
    const now = this.#now();
    if (now - this.#lastWarnAt < DLQ_WARN_EVERY_MS) {
      this.#lostUnwarned++;
      return;
    }
    const others =
      this.#lostUnwarned === 0
        ? ""
        : ` (and ${this.#lostUnwarned} more lost since the last warning)`;
    this.#lastWarnAt = now;
    this.#lostUnwarned = 0;
    this.#log.warn(
      `dead letter of ${route.name} request ${input.requestId} not stored (${reason}): ${why}${others}`,
    );
  }

  list(filter: DeadLetterFilter = {}): Promise<DeadLetter[]> {
    return listDeadLetters(this.#connected(), filter);
  }

  replay(filter: DeadLetterFilter = {}): Promise<ReplayOutcome[]> {
    return replayDeadLetters(this.#connected(), {
      ...filter,
      timeoutOf: (name) => this.#configs.get(name)?.timeoutMs,
    });
  }

  /** Stores the letter; undefined once stored, else why it was not even tried. */
  async #store(
    route: RouteConfig,
    input: RouteInput,
    error: TurnoutError,
  ): Promise<{ reason: LostReason; why: string } | undefined> {
    const compiled = this.#compiled(route);
    const subject = compiled.subjectOf(input.params);
    const payload = compiled.encode(input);
    const h = natsHeaders();
    h.set(ROUTE_HEADER, route.name);
    h.set(REQUEST_ID_HEADER, input.requestId);
    for (const name of ["traceparent", "tracestate", ...route.headers]) {
      const value = input.headers[name];
      if (value === undefined || value === "") continue;
      for (const one of typeof value === "string" ? [value] : value) h.append(name, one.trim());
    }
    h.set(SUBJECT_HEADER, subject);
    h.set(ERROR_CODE_HEADER, error.code);
    h.set(ERROR_HEADER, oneLine(error.message));
    let nc: NatsConnection;
    try {
      await this.ensureStream();
      nc = this.#connected();
    } catch (failure) {
      return { reason: "unavailable", why: errorMessage(failure) };
    }
    const publish = () =>
      jetstream(nc).publish(`${DLQ_SUBJECT_PREFIX}${route.name}`, payload, { headers: h });
    try {
      await publish();
    } catch (failure) {
      if (!isJetStreamMissing(failure)) throw failure;
      // No stream took it: TURNOUT_DLQ was deleted since it was ensured. Ensure
      // it again (created when missing) and publish once more.
      this.#ensured = undefined;
      try {
        await this.ensureStream();
      } catch (again) {
        return { reason: "unavailable", why: errorMessage(again) };
      }
      await publish();
    }
    return undefined;
  }

  #compiled(route: RouteConfig): CompiledRoute {
    let compiled = this.#routes.get(route.name);
    if (compiled === undefined) {
      const codec = compileRouteCodec(this.#root, route);
      compiled = {
        route,
        subjectOf: compileSubject(route.subject),
        encode: (input) =>
          codec.encodeRequest(
            input.params,
            input.query,
            input.body === undefined || input.body === "" ? undefined : parseJsonBody(input.body),
          ),
      };
      this.#routes.set(route.name, compiled);
    }
    return compiled;
  }

  #connected(): NatsConnection {
    const nc = this.#connection();
    if (nc === undefined || nc.isClosed()) {
      throw new TurnoutError("TURNOUT_ERR_NOT_CONNECTED", "the gateway is not connected to NATS");
    }
    return nc;
  }
}

/** Creates `TURNOUT_DLQ` when it does not exist (an existing one is left as it is). */
export async function ensureDlqStream(nc: NatsConnection): Promise<JetStreamManager> {
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.info(DLQ_STREAM);
  } catch (error) {
    if (!isNotFound(error)) throw error;
    await jsm.streams.add({
      name: DLQ_STREAM,
      subjects: [`${DLQ_SUBJECT_PREFIX}>`],
      max_age: DLQ_MAX_AGE_MS * 1_000_000,
      max_bytes: DLQ_MAX_BYTES,
      discard: "old" as never,
      storage: "file" as never,
    });
  }
  return jsm;
}

/** The stored letters matching the filter, oldest first; none when the stream is missing. */
export async function listDeadLetters(
  nc: NatsConnection,
  filter: DeadLetterFilter = {},
): Promise<DeadLetter[]> {
  const jsm = await jetstreamManager(nc);
  const subject =
    filter.route === undefined ? `${DLQ_SUBJECT_PREFIX}>` : `${DLQ_SUBJECT_PREFIX}${filter.route}`;
  const since = filter.since?.getTime();
  const letters: DeadLetter[] = [];
  let seq = 1;
  while (filter.limit === undefined || letters.length < filter.limit) {
    let stored: Awaited<ReturnType<JetStreamManager["streams"]["getMessage"]>>;
    try {
      stored = await jsm.streams.getMessage(DLQ_STREAM, {
        seq,
        next_by_subj: subject,
      } as never);
    } catch (error) {
      if (isNotFound(error)) break;
      throw error;
    }
    if (stored === null) break;
    seq = stored.seq + 1;
    if (since !== undefined && stored.time.getTime() < since) continue;
    letters.push(toLetter(stored.seq, stored.time, stored.header, stored.data));
  }
  return letters;
}

/**
 * Re-sends every matching letter to its original subject with its original
 * headers, one at a time, oldest first; deletes each one answered ok (2xx).
 */
export async function replayDeadLetters(
  nc: NatsConnection,
  options: ReplayOptions = {},
): Promise<ReplayOutcome[]> {
  const letters = await listDeadLetters(nc, options);
  if (letters.length === 0) return [];
  const jsm = await jetstreamManager(nc);
  const outcomes: ReplayOutcome[] = [];
  for (const letter of letters) {
    const who = { seq: letter.seq, route: letter.route, requestId: letter.requestId };
    const h = natsHeaders();
    for (const [name, values] of Object.entries(letter.headers)) {
      if (META_HEADERS.has(name.toLowerCase()) || name.toLowerCase().startsWith("nats-")) continue;
      for (const value of values) h.append(name, value);
    }
    const timeout = options.timeoutOf?.(letter.route) ?? DEFAULT_REPLAY_TIMEOUT_MS;
    try {
      const reply = interpretReply(
        await nc.request(letter.subject, Buffer.from(letter.body, "base64"), {
          headers: h,
          timeout,
        }),
      );
      if (reply.kind === "ok") {
        await jsm.streams.deleteMessage(DLQ_STREAM, letter.seq);
        outcomes.push({ ...who, result: "ok", status: reply.status });
      } else {
        outcomes.push({
          ...who,
          result: "failed",
          code: String(reply.status),
          message: reply.message,
        });
      }
    } catch (error) {
      outcomes.push({
        ...who,
        result: "failed",
        code: requestErrorCode(error),
        message: errorMessage(error),
      });
    }
  }
  return outcomes;
}

function toLetter(seq: number, time: Date, header: MsgHdrs, data: Uint8Array): DeadLetter {
  const headers: Record<string, string[]> = {};
  for (const [name, values] of header) headers[name] = [...values];
  const one = (name: string) => header.get(name);
  return {
    seq,
    route: one(ROUTE_HEADER),
    requestId: one(REQUEST_ID_HEADER),
    subject: one(SUBJECT_HEADER),
    errorCode: one(ERROR_CODE_HEADER),
    error: one(ERROR_HEADER),
    at: time.toISOString(),
    headers,
    body: Buffer.from(data).toString("base64"),
  };
}

/** The failure of a replayed request, named like the gateway's own codes. */
function requestErrorCode(error: unknown): string {
  const name = (error as { name?: string; code?: string }).name ?? "";
  const text = errorMessage(error).toLowerCase();
  if (name === "NoRespondersError" || text.includes("no responders"))
    return "TURNOUT_ERR_NO_RESPONDERS";
  if (name === "TimeoutError" || text.includes("timeout")) return "TURNOUT_ERR_TIMEOUT";
  if (error instanceof TurnoutError) return error.code;
  return "TURNOUT_ERR_NATS";
}

function isNotFound(error: unknown): boolean {
  const e = error as { code?: unknown; api_error?: { code?: number; err_code?: number } };
  if (e?.api_error?.code === 404) return true;
  return /not found/i.test(errorMessage(error));
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, " ");
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
