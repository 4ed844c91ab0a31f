/**
 * Dead letters: a request that finally failed on NATS, and that legacy did not
 * serve instead (no responders, not connected, timeout, breaker open, after
 * the route's retries)
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
 * deleted from the stream, any other outcome leaves it there (same sequence)
 * for a later replay. Replayers (API, CLI, replicas) may run at once: each
 * claims a letter before sending it (see replayOne), so one of them sends it.
 */
import {
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  type StoredMsg,
} from "@nats-io/jetstream";
import {
  Empty,
  type MsgHdrs,
  type NatsConnection,
  errors as natsErrors,
  headers as natsHeaders,
} from "@nats-io/transport-node";
import type protobuf from "protobufjs";
import { compileRouteCodec, parseJsonBody } from "../../codec/index.js";
import { parseTimestamp } from "../../codec/time.js";
import type { RouteConfig } from "../../config/types.js";
import { parseDuration } from "../../config/units.js";
import { type ErrorCode, TurnoutError } from "../../errors.js";
import { CREDENTIAL_HEADERS } from "../../observability/credential-headers.js";
import type { GatewayMetrics } from "../../observability/metrics.js";
import { compileSubject } from "../../routing/subject.js";
import type { RouteInput } from "../../server/nats-pipeline.js";
import { clusterReplicas, isJetStreamMissing } from "./connection.js";
import { headerText, REQUEST_ID_HEADER, ROUTE_HEADER } from "./headers.js";
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

/**
 * A replayer's claim on letter N is a message on `turnout.dlq-claim.N`, in a
 * stream of its own: in TURNOUT_DLQ, full and discarding its oldest, the
 * claim on the oldest letter (replays go oldest first) removed that letter.
 */
export const DLQ_CLAIMS_STREAM = "TURNOUT_DLQ_CLAIMS";
export const DLQ_CLAIM_PREFIX = "turnout.dlq-claim.";
/** Claims are released within a route's timeout: a day keeps any left behind long enough. */
const DLQ_CLAIM_MAX_AGE_MS = 24 * 3600 * 1000;
const DLQ_CLAIMS_MAX_BYTES = 64 * 1024 ** 2;
/** Where earlier versions kept their claims, in TURNOUT_DLQ: never a letter. */
const OLD_CLAIM_PREFIX = `${DLQ_SUBJECT_PREFIX}$claim.`;
/**
 * A claim older than its letter's timeout plus this was left by a replayer that
 * died (or lost NATS) before releasing it: another replayer may take it over.
 * Generous, as replicas' clocks may differ a little from the server's.
 */
export const DLQ_CLAIM_MARGIN_MS = 60_000;
/** JetStream's "wrong last sequence": the claim subject already holds a claim. */
const WRONG_LAST_SEQUENCE = 10071;
/** JetStream's "sequence N not found", deleting a message. */
const SEQUENCE_NOT_FOUND = 10043;

/** Letters waiting for their JetStream ack at once; more are lost as `overloaded`. */
export const DLQ_MAX_IN_FLIGHT = 1024;
/** After the stream proved unavailable, letters are lost without asking again for this long. */
export const DLQ_RETRY_AFTER_MS = 5000;
/** At most one "not stored" warning per this interval; the others are summed into the next. */
export const DLQ_WARN_EVERY_MS = 10_000;

/** `turnout_dead_letters_lost_total` reasons. */
const LOST_REASONS = ["overloaded", "unavailable", "failed"] as const;
export type LostReason = (typeof LOST_REASONS)[number];

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
    }
  | {
      readonly seq: number;
      readonly route: string;
      readonly requestId: string;
      /** Another replayer has it or just re-sent it: not sent by this one. */
      readonly result: "skipped";
      readonly message: string;
    };

export interface ReplayReport {
  readonly outcomes: ReplayOutcome[];
  /** Letters matching the filter are left beyond `after`: call again with it. */
  readonly more: boolean;
  /** The sequence of the last letter this call took, when it took any. */
  readonly after: number | undefined;
  /**
   * Why the replay stopped before the end, after re-sending some letters (NATS
   * or JetStream went away): the letters past `after` were not tried. A replay
   * that took no letter fails instead.
   */
  readonly stopped?: string;
}

export interface DeadLetterFilter {
  readonly route?: string;
  /** Only letters stored at or after this time. */
  readonly since?: Date;
  /** Only letters after this stream sequence (the `after` of the previous page). */
  readonly after?: number;
  /** At most this many letters, the oldest first; all when unset. */
  readonly limit?: number;
}

/**
 * A `since` filter as operators write it: an RFC 3339 time
 * ("2026-03-01T12:00:00Z"), a UTC date ("2026-03-01"), or a duration back from
 * `now` ("30m", "2h"). Anything else throws TURNOUT_ERR_BAD_PARAM (field
 * `since`, the message naming it as `name`: the CLI says `--since`): JavaScript's
 * lenient Date parsing would read "1" as the year 2001.
 */
export function parseSince(text: string, now: number, name = "since"): Date {
  const trimmed = text.trim();
  const since = /^\d+(\.\d+)?(ms|s|m|h)$/.test(trimmed)
    ? new Date(now - durationBack(trimmed, text, name))
    : timeSince(trimmed, text, name);
  // Past ±8.64e15 ms a Date is invalid: as a filter it would match nothing, silently.
  if (Number.isNaN(since.getTime())) {
    throw badSince(name, "must lie within 273,790 years of 1970", text);
  }
  return since;
}

/** The milliseconds of a duration `since`; below 1 ms is refused like any bad value. */
function durationBack(trimmed: string, text: string, name: string): number {
  try {
    return parseDuration(trimmed);
  } catch (error) {
    throw badSince(name, errorMessage(error), text);
  }
}

function timeSince(trimmed: string, text: string, name: string): Date {
  const time = /^\d{4}-\d{2}-\d{2}$/.test(trimmed) ? `${trimmed}T00:00:00Z` : trimmed;
  try {
    const { seconds, nanos } = parseTimestamp(time);
    return new Date(seconds * 1000 + Math.floor(nanos / 1e6));
  } catch {
    const forms =
      "must be an RFC 3339 time (2026-03-01T12:00:00Z), a date (2026-03-01) or a duration back from now (30m, 2h)";
    throw badSince(name, forms, text);
  }
}

function badSince(name: string, why: string, text: string): TurnoutError {
  return new TurnoutError("TURNOUT_ERR_BAD_PARAM", `${name} ${why}, got ${JSON.stringify(text)}`, {
    field: "since",
  });
}

export interface ReplayOptions extends DeadLetterFilter {
  /** Per-route request timeout in ms (routes.yaml's `timeout`); default 5 s. */
  readonly timeoutOf?: (route: string) => number | undefined;
  /** Wall-clock milliseconds, to age claims; tests pass their own. */
  readonly now?: () => number;
}

interface Log {
  warn(message: string): void;
}

/** What the store needs of the gateway's NATS link (NatsLink). */
export interface DeadLetterLink {
  readonly connection: NatsConnection | undefined;
  /** Throws NOT_CONNECTED before the first connection, once closed and while reconnecting. */
  jetstream(): JetStreamClient;
}

interface CompiledRoute {
  readonly route: RouteConfig;
  readonly subjectOf: (params: Readonly<Record<string, string | undefined>>) => string;
  readonly encode: (input: RouteInput) => Uint8Array;
}

/** The gateway's dead-letter store: records failed requests, lists and replays them. */
export class DeadLetterStore {
  readonly #link: DeadLetterLink;
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
    link: DeadLetterLink;
    routes: readonly RouteConfig[];
    root: protobuf.Root;
    metrics: GatewayMetrics;
    log: Log;
    /** Default DLQ_MAX_IN_FLIGHT. */
    maxInFlight?: number;
    /** Monotonic milliseconds; tests pass their own clock. */
    now?: () => number;
  }) {
    this.#link = deps.link;
    this.#metrics = deps.metrics;
    this.#log = deps.log;
    this.#root = deps.root;
    this.#configs = new Map(deps.routes.map((r) => [r.name, r]));
    this.#maxInFlight = deps.maxInFlight ?? DLQ_MAX_IN_FLIGHT;
    this.#now = deps.now ?? (() => performance.now());
    // Exported at 0 from the start: a series that first appears at N is an
    // increase of 0 to Prometheus, and the first burst would raise no alert.
    for (const route of deps.routes) {
      if (route.mode !== "request") continue;
      this.#metrics.deadLetters.cell(route.name);
      for (const reason of LOST_REASONS) this.#metrics.deadLettersLost.cell(route.name, reason);
    }
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

  replay(filter: DeadLetterFilter = {}): Promise<ReplayReport> {
    return replayDeadLetters(this.#connected(), {
      ...filter,
      timeoutOf: (name) => this.#configs.get(name)?.timeoutMs,
    });
  }

  /** Deletes the letter at `seq`; undefined when there is none. */
  delete(seq: number): Promise<DeadLetter | undefined> {
    return deleteDeadLetter(this.#connected(), seq);
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
      // MsgHdrs encodes as UTF-8: give it the text the client's bytes spell.
      for (const one of typeof value === "string" ? [value] : value)
        h.append(name, headerText(one));
    }
    h.set(SUBJECT_HEADER, subject);
    h.set(ERROR_CODE_HEADER, error.code);
    h.set(ERROR_HEADER, oneLine(error.message));
    let js: JetStreamClient;
    try {
      // Refused at once while NATS reconnects: a publish would wait for its ack timeout.
      js = this.#link.jetstream();
      await this.ensureStream();
    } catch (failure) {
      return { reason: "unavailable", why: errorMessage(failure) };
    }
    const publish = () => js.publish(`${DLQ_SUBJECT_PREFIX}${route.name}`, payload, { headers: h });
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
    const nc = this.#link.connection;
    if (nc === undefined || nc.isClosed()) {
      throw new TurnoutError("TURNOUT_ERR_NOT_CONNECTED", "the gateway is not connected to NATS");
    }
    return nc;
  }
}

/** Creates `TURNOUT_DLQ` when it does not exist (an existing one is left as it is). */
export async function ensureDlqStream(nc: NatsConnection): Promise<JetStreamManager> {
  const jsm = await jetstreamManager(nc);
  await ensureStream(jsm, clusterReplicas(nc), {
    name: DLQ_STREAM,
    subject: `${DLQ_SUBJECT_PREFIX}>`,
    maxAgeMs: DLQ_MAX_AGE_MS,
    maxBytes: DLQ_MAX_BYTES,
  });
  return jsm;
}

/** Creates `TURNOUT_DLQ_CLAIMS` when it does not exist: the first replay does. */
export function ensureClaimsStream(nc: NatsConnection, jsm: JetStreamManager): Promise<void> {
  return ensureStream(jsm, clusterReplicas(nc), {
    name: DLQ_CLAIMS_STREAM,
    subject: `${DLQ_CLAIM_PREFIX}>`,
    maxAgeMs: DLQ_CLAIM_MAX_AGE_MS,
    maxBytes: DLQ_CLAIMS_MAX_BYTES,
  });
}

async function ensureStream(
  jsm: JetStreamManager,
  replicas: number,
  stream: { name: string; subject: string; maxAgeMs: number; maxBytes: number },
): Promise<void> {
  let had: number;
  try {
    had = (await jsm.streams.info(stream.name)).config.num_replicas;
  } catch (error) {
    if (!isNotFound(error)) throw error;
    await jsm.streams.add({
      name: stream.name,
      subjects: [stream.subject],
      max_age: stream.maxAgeMs * 1_000_000,
      max_bytes: stream.maxBytes,
      discard: "old" as never,
      storage: "file" as never,
      num_replicas: replicas,
    });
    return;
  }
  // Made by an older version with one copy: raised, as the KV buckets are. A
  // refusal (permissions, servers down) keeps it as it is: it works with fewer.
  if (had < replicas) {
    await jsm.streams.update(stream.name, { num_replicas: replicas }).catch(() => undefined);
  }
}

/** The stored letters matching the filter, oldest first; none when the stream is missing. */
export function listDeadLetters(
  nc: NatsConnection,
  filter: DeadLetterFilter = {},
): Promise<DeadLetter[]> {
  return whileAvailable(() => collectLetters(nc, filter));
}

async function collectLetters(nc: NatsConnection, filter: DeadLetterFilter): Promise<DeadLetter[]> {
  const letters: DeadLetter[] = [];
  if (filter.limit === 0) return letters;
  for await (const letter of matchingLetters(await jetstreamManager(nc), filter)) {
    letters.push(letter);
    if (letters.length === filter.limit) break;
  }
  return letters;
}

/**
 * Runs a list, replay or delete, turning a JetStream or NATS that cannot serve
 * it into a 503 TURNOUT_ERR_NOT_CONNECTED saying why: an outage to wait out,
 * not a gateway bug (the opaque 500 an unknown error makes).
 */
async function whileAvailable<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    const why = unavailableWhy(error);
    if (why === undefined) throw error;
    throw new TurnoutError("TURNOUT_ERR_NOT_CONNECTED", `dead letters unavailable: ${why}`, {
      cause: error,
    });
  }
}

/** Why JetStream could not answer, when that is the failure; undefined for any other. */
function unavailableWhy(error: unknown): string | undefined {
  if (isJetStreamMissing(error)) {
    return `JetStream does not answer for ${DLQ_STREAM} (the NATS server has no JetStream, or the servers holding the stream are down)`;
  }
  // JetStream's own 503s: "temporarily unavailable", "not enabled".
  if (error instanceof JetStreamApiError && error.status === 503) {
    return `JetStream is unavailable: ${error.message}`;
  }
  // nats.js holds requests while it reconnects: they time out.
  if (error instanceof natsErrors.TimeoutError) {
    return "NATS did not answer in time (the server is down or the gateway is reconnecting)";
  }
  if (
    error instanceof natsErrors.ClosedConnectionError ||
    error instanceof natsErrors.DrainingConnectionError
  ) {
    return `the connection to NATS is closed (${error.message})`;
  }
  return undefined;
}

/**
 * The letters matching the filter, oldest first, read one at a time as they are
 * asked for, up to the last one stored when the walk began: a replay during a
 * storm would otherwise chase the letters its own failures keep adding.
 */
async function* matchingLetters(
  jsm: JetStreamManager,
  filter: DeadLetterFilter,
): AsyncGenerator<DeadLetter> {
  const state = await streamState(jsm);
  if (state === undefined) return;
  const subject =
    filter.route === undefined ? `${DLQ_SUBJECT_PREFIX}>` : `${DLQ_SUBJECT_PREFIX}${filter.route}`;
  const since = filter.since?.getTime();
  let seq = Math.max(state.first_seq, (filter.after ?? 0) + 1);
  if (since !== undefined) seq = await firstStoredAt(jsm, seq, state.last_seq, since);
  while (seq <= state.last_seq) {
    const stored = await nextStored(jsm, seq, subject);
    if (stored === null || stored.seq > state.last_seq) return;
    seq = stored.seq + 1;
    if (stored.subject.startsWith(OLD_CLAIM_PREFIX)) continue;
    // Past the seek, only a server clock set back could leave an older one.
    if (since !== undefined && stored.time.getTime() < since) continue;
    yield toLetter(stored.seq, stored.time, stored.header, stored.data);
  }
}

async function streamState(
  jsm: JetStreamManager,
): Promise<{ first_seq: number; last_seq: number } | undefined> {
  try {
    return (await jsm.streams.info(DLQ_STREAM)).state;
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/**
 * The first sequence in [from, last + 1] whose message was stored at or after
 * `since`. Messages are stored in time order, so a binary search finds it in
 * about 30 reads at the stream's 1 GiB cap, where a walk from the start read
 * every letter (nats-server 2.9 has no get-by-time).
 */
async function firstStoredAt(
  jsm: JetStreamManager,
  from: number,
  last: number,
  since: number,
): Promise<number> {
  let lo = from;
  let hi = last + 1;
  while (lo < hi) {
    const mid = lo + Math.floor((hi - lo) / 2);
    // Deleted letters leave holes: read the first message at or after mid.
    const stored = await nextStored(jsm, mid, `${DLQ_SUBJECT_PREFIX}>`);
    if (stored === null || stored.time.getTime() >= since) hi = mid;
    else lo = stored.seq + 1;
  }
  return lo;
}

/** The first message at or after `seq` on `subject`, or null. */
async function nextStored(
  jsm: JetStreamManager,
  seq: number,
  subject: string,
): Promise<StoredMsg | null> {
  try {
    return await jsm.streams.getMessage(DLQ_STREAM, { seq, next_by_subj: subject } as never);
  } catch (error) {
    if (isNotFound(error)) return null;
    throw error;
  }
}

/** The letter at `seq`, or undefined (none, deleted, or a claim). */
async function letterAt(jsm: JetStreamManager, seq: number): Promise<DeadLetter | undefined> {
  let stored: StoredMsg | null;
  try {
    stored = await jsm.streams.getMessage(DLQ_STREAM, { seq });
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
  if (stored === null || stored.subject.startsWith(OLD_CLAIM_PREFIX)) return undefined;
  return toLetter(stored.seq, stored.time, stored.header, stored.data);
}

/** Deletes the letter at `seq`; undefined when there is none (any more). */
export function deleteDeadLetter(nc: NatsConnection, seq: number): Promise<DeadLetter | undefined> {
  return whileAvailable(() => deleteLetter(nc, seq));
}

async function deleteLetter(nc: NatsConnection, seq: number): Promise<DeadLetter | undefined> {
  if (!Number.isSafeInteger(seq) || seq < 1) return undefined; // sequences start at 1
  const jsm = await jetstreamManager(nc);
  const letter = await letterAt(jsm, seq);
  if (letter === undefined || !(await deleteIfStored(jsm, seq))) return undefined;
  return letter;
}

/** False when the message is gone already (another replayer or a delete took it). */
async function deleteIfStored(jsm: JetStreamManager, seq: number): Promise<boolean> {
  try {
    return await jsm.streams.deleteMessage(DLQ_STREAM, seq);
  } catch (error) {
    if (isMessageGone(error)) return false;
    throw error;
  }
}

/**
 * JetStream's ways of saying a message to delete is not there: "sequence N not
 * found" (10043), or "no message found" (a 500) when it went meanwhile.
 */
function isMessageGone(error: unknown): boolean {
  if (!(error instanceof JetStreamApiError)) return false;
  if (error.status === 404 || error.code === SEQUENCE_NOT_FOUND) return true;
  return /no message found/i.test(error.message);
}

interface Replayer {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly timeoutOf: (route: string) => number;
  readonly now: () => number;
}

/**
 * Re-sends the matching letters to their original subjects with their original
 * headers, one at a time, oldest first, at most `limit` of them; deletes each
 * one answered ok (2xx). `more` and `after` page through the rest.
 */
export function replayDeadLetters(
  nc: NatsConnection,
  options: ReplayOptions = {},
): Promise<ReplayReport> {
  return whileAvailable(() => replayMatching(nc, options));
}

async function replayMatching(nc: NatsConnection, options: ReplayOptions): Promise<ReplayReport> {
  const jsm = await jetstreamManager(nc);
  const replayer: Replayer = {
    nc,
    js: jetstream(nc),
    jsm,
    timeoutOf: (route) => options.timeoutOf?.(route) ?? DEFAULT_REPLAY_TIMEOUT_MS,
    now: options.now ?? Date.now,
  };
  const outcomes: ReplayOutcome[] = [];
  let after: number | undefined;
  try {
    for await (const letter of matchingLetters(jsm, options)) {
      if (outcomes.length === options.limit) return { outcomes, more: true, after };
      // Made with the first letter to replay: none while there are none.
      if (after === undefined) await ensureClaimsStream(nc, jsm);
      outcomes.push(await replayOne(replayer, letter));
      after = letter.seq;
    }
  } catch (error) {
    // The letters re-sent (and deleted) so far must still be reported.
    if (outcomes.length === 0) throw error;
    const why = unavailableWhy(error) ?? (error instanceof Error ? error.message : String(error));
    const stopped = `dead letters unavailable: ${why}`;
    return { outcomes, more: true, after, stopped };
  }
  return { outcomes, more: false, after };
}

/**
 * Claims the letter, re-sends it and releases the claim. Without the claim two
 * replayers (two API calls, the CLI and a replica) both sent every letter, and
 * the second to delete it reported its success as a failure.
 *
 * A replayer that dies between its claim and its release leaves the claim
 * behind; once it is older than the letter's timeout plus DLQ_CLAIM_MARGIN_MS,
 * another replay takes it over and sends the letter again. So a crash
 * mid-send can deliver a letter twice (at least once), never lose it: the
 * other way (delete first, store again on failure) loses the letter when the
 * replayer dies before storing it back, and moves every failed letter to the
 * end of the stream under a new sequence, which breaks paging by `after`.
 * Workers see the same X-Request-Id both times.
 */
async function replayOne(replayer: Replayer, letter: DeadLetter): Promise<ReplayOutcome> {
  const who = { seq: letter.seq, route: letter.route, requestId: letter.requestId };
  const timeout = replayer.timeoutOf(letter.route);
  let claim: number | undefined;
  try {
    claim = await claimLetter(replayer, letter.seq, timeout + DLQ_CLAIM_MARGIN_MS);
  } catch (error) {
    return failedWith(who, error);
  }
  if (claim === undefined) {
    return { ...who, result: "skipped", message: "another replay is re-sending it" };
  }
  try {
    // Listed before the claim: another replayer may have re-sent and deleted it since.
    if ((await letterAt(replayer.jsm, letter.seq)) === undefined) {
      return { ...who, result: "skipped", message: "another replay re-sent it already" };
    }
    return await sendLetter(replayer, letter, timeout);
  } catch (error) {
    return failedWith(who, error);
  } finally {
    await releaseClaim(replayer.jsm, claim);
  }
}

/**
 * Publishes this replayer's claim on letter `seq`, expecting no other claim on
 * its subject (JetStream's expected last subject sequence, checked by the
 * server): of two replayers, one gets it. Returns the claim's sequence, or
 * undefined when another replayer holds a claim younger than `leaseMs`.
 */
async function claimLetter(
  replayer: Replayer,
  seq: number,
  leaseMs: number,
): Promise<number | undefined> {
  const subject = `${DLQ_CLAIM_PREFIX}${seq}`;
  const claim = (last: number) =>
    replayer.js.publish(subject, Empty, { expect: { lastSubjectSequence: last } });
  let held: number | undefined;
  try {
    return (await claim(0)).seq;
  } catch (error) {
    held = heldClaim(error);
    if (held === undefined) throw error;
  }
  const stored = await replayer.jsm.streams.getMessage(DLQ_CLAIMS_STREAM, { seq: held });
  // Gone: its replayer just released it, having re-sent the letter or kept it.
  if (stored === null || replayer.now() - stored.time.getTime() < leaseMs) return undefined;
  let ours: number;
  try {
    ours = (await claim(held)).seq;
  } catch (error) {
    if (heldClaim(error) !== undefined) return undefined; // another took it over first
    throw error;
  }
  await releaseClaim(replayer.jsm, held);
  return ours;
}

/** The sequence of the claim that refused ours, when that is why it failed. */
function heldClaim(error: unknown): number | undefined {
  if (!(error instanceof JetStreamApiError) || error.code !== WRONG_LAST_SEQUENCE) return undefined;
  const held = /(\d+)\s*$/.exec(error.message);
  return held === null ? undefined : Number(held[1]);
}

/** Never throws: a claim left behind is taken over once it is old (see replayOne). */
async function releaseClaim(jsm: JetStreamManager, claim: number): Promise<void> {
  try {
    await jsm.streams.deleteMessage(DLQ_CLAIMS_STREAM, claim, false);
  } catch {
    // Left for the lease to expire.
  }
}

/** Sends the letter; deletes it when the answer is ok. */
async function sendLetter(
  replayer: Replayer,
  letter: DeadLetter,
  timeout: number,
): Promise<ReplayOutcome> {
  const who = { seq: letter.seq, route: letter.route, requestId: letter.requestId };
  const h = natsHeaders();
  for (const [name, values] of Object.entries(letter.headers)) {
    if (META_HEADERS.has(name.toLowerCase()) || name.toLowerCase().startsWith("nats-")) continue;
    for (const value of values) h.append(name, value);
  }
  let reply: ReturnType<typeof interpretReply>;
  try {
    const body = Buffer.from(letter.body, "base64");
    reply = interpretReply(
      await replayer.nc.request(letter.subject, body, { headers: h, timeout }),
    );
  } catch (error) {
    return failedWith(who, error);
  }
  if (reply.kind !== "ok") {
    return { ...who, result: "failed", code: String(reply.status), message: reply.message };
  }
  try {
    await deleteIfStored(replayer.jsm, letter.seq);
  } catch (error) {
    // The worker has it, but the letter stays: a later replay sends it again.
    const message = `answered ${reply.status} but not deleted: ${errorMessage(error)}`;
    return { ...who, result: "failed", code: requestErrorCode(error), message };
  }
  return { ...who, result: "ok", status: reply.status };
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

const CREDENTIALS = new Set(CREDENTIAL_HEADERS);

/**
 * The letter as the admin API shows it: the values of credential headers a
 * route forwards (Authorization, cookies) replaced by "[redacted]". The
 * stored letter keeps them, so a replay still sends what the worker needs.
 */
export function shownLetter(letter: DeadLetter): DeadLetter {
  const headers: Record<string, string[]> = {};
  for (const [name, values] of Object.entries(letter.headers)) {
    headers[name] = CREDENTIALS.has(name.toLowerCase()) ? values.map(() => "[redacted]") : values;
  }
  return { ...letter, headers };
}

type Who = Pick<ReplayOutcome, "seq" | "route" | "requestId">;

function failedWith(who: Who, error: unknown): ReplayOutcome {
  return { ...who, result: "failed", code: requestErrorCode(error), message: errorMessage(error) };
}

/**
 * The failure of a replayed request, named like the gateway's own codes: a
 * TurnoutError's own, nats.js's no-responders and timeout by their class
 * (never by their text, which any error may mention), else TURNOUT_ERR_NATS.
 */
function requestErrorCode(error: unknown): ErrorCode {
  if (error instanceof TurnoutError) return error.code;
  const noResponders =
    error instanceof natsErrors.NoRespondersError ||
    (error instanceof natsErrors.RequestError && error.isNoResponders());
  if (noResponders) return "TURNOUT_ERR_NO_RESPONDERS";
  if (error instanceof natsErrors.TimeoutError) return "TURNOUT_ERR_TIMEOUT";
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
