/**
 * The live cutover state in the NATS KV bucket `turnout_cutover` (key = route
 * name, value JSON `{nats, shadow, by, reason, at}`). The bucket keeps 64
 * revisions per key: its history is the audit log.
 *
 * `CutoverBucket` reads and writes the bucket (the admin API and the CLI);
 * `CutoverStore` is the gateway's side: it seeds missing keys from routes.yaml,
 * loads every route's live values, then watches the bucket and applies each
 * change to the CutoverState as it arrives. Without JetStream it leaves the
 * file's values in place, says so, and keeps trying. While live it checks that
 * the bucket is still the one it watches and reloads when it is gone or was
 * re-created: the watch itself goes silent then instead of ending.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import type { KV, KvEntry } from "@nats-io/kv";
import { Kvm, KvWatchInclude } from "@nats-io/kv";
import type { NatsConnection, QueuedIterator, Status } from "@nats-io/nats-core";
import { clusterReplicas, isJetStreamMissing } from "../backends/nats/connection.js";
import type { RouteConfig } from "../config/types.js";
import { TurnoutError } from "../errors.js";
import {
  type CutoverChange,
  checkRouteAllows,
  percentProblem,
  RESEED_BY,
  type RollbackRequest,
  SEED_BY,
} from "./cutover-rules.js";
import type { CutoverState, CutoverValues } from "./cutover-state.js";

export const CUTOVER_BUCKET = "turnout_cutover";
/** Revisions kept per route: the depth of the audit log. */
export const CUTOVER_HISTORY = 64;
export { SEED_BY } from "./cutover-rules.js";

/** Compare-and-set attempts of one change before answering a conflict. */
const CHANGE_ATTEMPTS = 5;
/** The longest wait between two attempts to load the live state, in ms. */
const MAX_RETRY_MS = 30_000;
/** How often a live store checks that its bucket was not lost or re-created, in ms. */
const CHECK_MS = 5000;

/** One value of the bucket. */
export interface CutoverRecord extends CutoverValues {
  readonly by: string;
  readonly reason: string;
  /** ISO 8601 time of the change. */
  readonly at: string;
}

/** A value with its KV revision. */
export interface CutoverRevision extends CutoverRecord {
  readonly revision: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeRecord(record: CutoverRecord): Uint8Array {
  const { nats, shadow, by, reason, at } = record;
  return encoder.encode(JSON.stringify({ nats, shadow, by, reason, at }));
}

/** The record in a KV entry, or undefined when it is not a well-formed one. */
export function decodeRecord(entry: KvEntry): CutoverRevision | undefined {
  const decoded = readRecord(entry);
  return typeof decoded === "string" ? undefined : decoded;
}

/** The record in a PUT entry, or why it is not a well-formed one. */
function readRecord(entry: KvEntry): CutoverRevision | string {
  if (entry.operation !== "PUT") return `a ${entry.operation}, not a value`;
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(entry.value));
  } catch {
    return "malformed: not JSON";
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return "malformed: not a JSON object";
  }
  const v = value as Record<string, unknown>;
  for (const field of ["nats", "shadow"] as const) {
    const problem = percentProblem(v[field]);
    if (problem !== undefined) return `malformed: ${field} ${problem}`;
  }
  return {
    nats: v.nats as number,
    shadow: v.shadow as number,
    by: typeof v.by === "string" ? v.by : "unknown",
    reason: typeof v.reason === "string" ? v.reason : "",
    at: typeof v.at === "string" ? v.at : entry.created.toISOString(),
    revision: entry.revision,
  };
}

/**
 * One row of a route's history (the audit log): a value written (`kind:
 * "value"`), the key deleted or purged (routes.yaml's values apply from then
 * on), or a value no replica applies because it is malformed (`ignored`, with
 * why). `at` of the last two is the time the KV stored them.
 */
export type CutoverHistoryRow =
  | (CutoverRevision & { readonly kind: "value" })
  | { readonly kind: "deleted" | "purged"; readonly revision: number; readonly at: string }
  | {
      readonly kind: "ignored";
      readonly revision: number;
      readonly at: string;
      readonly why: string;
    };

function historyRow(entry: KvEntry): CutoverHistoryRow {
  const at = entry.created.toISOString();
  if (entry.operation === "DEL") return { kind: "deleted", revision: entry.revision, at };
  if (entry.operation === "PURGE") return { kind: "purged", revision: entry.revision, at };
  const record = readRecord(entry);
  if (typeof record === "string") {
    return { kind: "ignored", revision: entry.revision, at, why: record };
  }
  return { kind: "value", ...record };
}

/** The bucket's operations, for the admin API and the CLI. */
export class CutoverBucket {
  readonly kv: KV;

  private constructor(kv: KV) {
    this.kv = kv;
  }

  /**
   * Opens the bucket, creating it when missing, and raises the history and
   * replicas of one made with fewer (`warn` says what it changed, or why it
   * could not). Throws TURNOUT_ERR_CUTOVER_UNAVAILABLE when the server has no
   * JetStream.
   */
  static async open(
    nc: NatsConnection,
    warn: (message: string) => void = () => {},
  ): Promise<CutoverBucket> {
    try {
      const kv = await openReplicated(nc, CUTOVER_BUCKET, CUTOVER_HISTORY, warn);
      return new CutoverBucket(kv);
    } catch (error) {
      if (!isJetStreamMissing(error)) throw error;
      throw new TurnoutError(
        "TURNOUT_ERR_CUTOVER_UNAVAILABLE",
        `JetStream does not answer for the KV bucket ${CUTOVER_BUCKET} (the server has no JetStream, or the servers holding the bucket are down): the live cutover state needs it`,
        { cause: error },
      );
    }
  }

  /**
   * The route's live value as the replicas apply it (see #read): undefined when
   * routes.yaml's values apply.
   */
  async current(route: RouteConfig): Promise<CutoverRevision | undefined> {
    return (await this.#read(route)).live;
  }

  /** An unconditional write: for tests and tools that mean to overwrite. */
  async set(route: string, change: CutoverChange): Promise<CutoverRevision> {
    const record = { ...pickValues(change), by: change.by, reason: change.reason, at: now() };
    try {
      const revision = await this.kv.put(route, encodeRecord(record));
      return { ...record, revision };
    } catch (error) {
      throw kvFailure(`cannot write the cutover of ${route}`, error);
    }
  }

  /**
   * Writes the change `build` makes from the route's live values, as a
   * compare-and-set on the revision they were read at: a field the caller left
   * out keeps what the fleet applies now, never a stale copy. Re-reads and
   * retries when another write lands in between; fails with
   * TURNOUT_ERR_CUTOVER_CONFLICT when writes keep landing.
   */
  async change(
    route: RouteConfig,
    build: (live: CutoverValues) => CutoverChange,
  ): Promise<CutoverRevision> {
    for (let attempt = 1; ; attempt++) {
      const { live, last } = await this.#read(route);
      const change = build(live ?? route.cutover);
      const record = { ...pickValues(change), by: change.by, reason: change.reason, at: now() };
      const written = await this.#writeAt(route.name, record, last);
      if (written !== undefined) return { ...record, revision: written };
      if (attempt >= CHANGE_ATTEMPTS) {
        throw new TurnoutError(
          "TURNOUT_ERR_CUTOVER_CONFLICT",
          `route ${route.name} kept changing while writing; look at its history and try again`,
        );
      }
    }
  }

  /** The new revision, or undefined when another write landed since `last` (0: no key). */
  async #writeAt(route: string, record: CutoverRecord, last: number): Promise<number | undefined> {
    try {
      return last === 0
        ? await this.#createOnly(route, encodeRecord(record))
        : await this.kv.update(route, encodeRecord(record), last);
    } catch (error) {
      if (isRevisionConflict(error)) return undefined;
      // A timeout may hide a write that landed: the caller reads before trying again.
      throw kvFailure(`the cutover of ${route} may or may not have been written`, error);
    }
  }

  /**
   * Writes only where the key has no entry at all. Not `kv.create`, which also
   * writes over a delete marker: a delete landing just before would be undone.
   */
  #createOnly(route: string, data: Uint8Array): Promise<number> {
    return this.kv.put(route, data, { previousSeq: 0 });
  }

  /**
   * The value a replica applies (see appliedValue); `last` is the key's latest
   * revision, 0 for none.
   */
  async #read(route: RouteConfig): Promise<{ live?: CutoverRevision; last: number }> {
    const entries = await this.#entries(route.name);
    return { live: appliedValue(route, entries).live, last: entries.at(-1)?.revision ?? 0 };
  }

  /**
   * Writes routes.yaml's values, `by` and `reason` as `origin` says, only if
   * the route has no key yet; otherwise answers the value running replicas
   * apply, chosen as #read chooses it (see appliedValue): undefined `live`
   * means routes.yaml's values. A deleted or purged key is left so: the
   * replicas apply routes.yaml's values and its plan stays paused, as on the
   * replicas that saw the delete, rather than start over from the seed.
   * `skipped` names a latest value that is not the one applied (malformed, or
   * refused by the route's rules).
   */
  async seed(route: RouteConfig, origin: SeedOrigin = STARTING_SEED): Promise<SeededValue> {
    const record = { ...pickValues(route.cutover), ...origin, at: now() };
    try {
      const revision = await this.#createOnly(route.name, encodeRecord(record));
      return { live: { ...record, revision } };
    } catch (error) {
      // Another replica (or the CLI) wrote it first: take what the replicas apply.
      const entries = await this.#entries(route.name);
      const newest = entries.at(-1);
      if (newest === undefined) throw error;
      const { live } = appliedValue(route, entries);
      if (newest.operation !== "PUT" || live?.revision === newest.revision) return { live };
      const value = decodeRecord(newest);
      const why = value === undefined ? "malformed" : (refusal(route, value) ?? "not applied");
      return { live, skipped: { revision: newest.revision, why } };
    }
  }

  /**
   * Every entry the bucket keeps for the route, oldest first: values, and the
   * deletes, purges and malformed values between them (see CutoverHistoryRow),
   * as each of them changed, or did not change, what the replicas apply.
   */
  async history(route: string): Promise<CutoverHistoryRow[]> {
    return (await this.#entries(route)).map(historyRow);
  }

  /**
   * Restores the values before the one the replicas apply, recorded as a
   * change of its own ("rollback of <at>", then ": <reason>" when one is
   * given). Both are chosen by the replicas' rules (see appliedValue): `from`
   * is the value #read answers, the restored one the next earlier well-formed
   * value the route allows, or routes.yaml's values when the key was deleted
   * or purged in between. `check` may refuse the restored values. Fails with
   * TURNOUT_ERR_CUTOVER_CONFLICT when routes.yaml's values apply already
   * (nothing to roll back), when the history kept holds no earlier value, or
   * when another change landed meanwhile.
   */
  async rollback(
    route: RouteConfig,
    request: RollbackRequest,
    check: (values: CutoverValues) => void = () => {},
  ): Promise<{ readonly from: CutoverRevision; readonly to: CutoverRevision }> {
    const entries = await this.#entries(route.name);
    const last = entries.at(-1);
    const latest = appliedValue(route, entries);
    if (last === undefined || latest.live === undefined) {
      throw new TurnoutError(
        "TURNOUT_ERR_CUTOVER_CONFLICT",
        `route ${route.name} has no earlier cutover value to roll back to: no live value applies, routes.yaml's do`,
        { field: "name" },
      );
    }
    const earlier = appliedValue(route, entries, latest.index);
    // Past the start of the history kept: the value before is not known.
    if (earlier.live === undefined && earlier.index < 0) {
      throw new TurnoutError(
        "TURNOUT_ERR_CUTOVER_CONFLICT",
        `route ${route.name} has no earlier cutover value to roll back to`,
        { field: "name" },
      );
    }
    const before = earlier.live ?? route.cutover;
    check(before);
    const from = latest.live;
    const record = {
      ...pickValues(before),
      by: request.by,
      reason: `rollback of ${from.at}${request.reason === undefined ? "" : `: ${request.reason}`}`,
      at: now(),
    };
    let revision: number;
    try {
      revision = await this.kv.update(route.name, encodeRecord(record), last.revision);
    } catch (error) {
      if (isRevisionConflict(error)) {
        throw new TurnoutError(
          "TURNOUT_ERR_CUTOVER_CONFLICT",
          `route ${route.name} changed while rolling back; look at its history and try again`,
          { cause: error },
        );
      }
      // A timeout may hide a write that landed: trying again blindly would roll that back too.
      throw kvFailure(
        `the rollback of ${route.name} may or may not have been written; read its history before trying again`,
        error,
      );
    }
    return { from, to: { ...record, revision } };
  }

  async #entries(route: string): Promise<KvEntry[]> {
    try {
      const iter = await this.kv.history({ key: route });
      const entries: KvEntry[] = [];
      for await (const entry of iter) entries.push(entry);
      return entries;
    } catch (error) {
      throw kvFailure(`cannot read the cutover history of ${route}`, error);
    }
  }
}

export type CutoverStoreMode = "starting" | "live" | "file";

/** Who a seed is written by, and why. */
export interface SeedOrigin {
  readonly by: string;
  readonly reason: string;
}

/** A route's first value: its plan runs from it. */
const STARTING_SEED: SeedOrigin = { by: SEED_BY, reason: "starting values from routes.yaml" };

/**
 * A route's value in a bucket re-created under running replicas (the server
 * lost its JetStream state): the values, pauses and stops held there are gone,
 * so no plan moves the route again until an operator says so.
 */
function lostBucketSeed(why: string): SeedOrigin {
  return {
    by: RESEED_BY,
    reason: `routes.yaml's values: the KV bucket ${why}; its plan waits for a value set --by plan`,
  };
}

export interface SeededValue {
  /** The value the replicas apply; undefined: routes.yaml's values. */
  readonly live?: CutoverRevision;
  /** A latest value that is not the one applied, and why ("malformed", or the route's refusal). */
  readonly skipped?: { readonly revision: number; readonly why: string };
}

export interface CutoverLog {
  info(message: string): void;
  warn(message: string): void;
}

export interface CutoverStoreOptions {
  /** First wait before retrying a failed load, in ms; it doubles up to 30 s. */
  readonly retryMs?: number;
  /** How often a live store checks that its bucket was not lost or re-created, in ms. */
  readonly checkMs?: number;
}

/** The gateway's live view of the bucket, applied to the CutoverState. */
export class CutoverStore {
  readonly #state: CutoverState;
  readonly #routes: ReadonlyMap<string, RouteConfig>;
  readonly #log: CutoverLog;
  readonly #retryMs: number;
  readonly #checkMs: number;
  readonly #latest = new Map<string, CutoverRevision>();
  #mode: CutoverStoreMode = "starting";
  #bucket: CutoverBucket | undefined;
  #watch: QueuedIterator<KvEntry> | undefined;
  #stopped = false;
  #retryTimer: NodeJS.Timeout | undefined;
  /** True from a completed load until its watch is dropped: checks run meanwhile. */
  #checking = false;
  #checkTimer: NodeJS.Timeout | undefined;
  /** Counts checks begun and watches dropped: an answer counts only if neither came since. */
  #checkSerial = 0;
  /** The `created` time of the bucket's stream the watch follows: a new one means re-created. */
  #streamCreated: string | undefined;
  /**
   * The `created` time of the stream #latest's revisions were read from, set
   * as a load begins: a load that fails half way leaves its revisions behind,
   * and they must not outrank those of a bucket re-created before the retry.
   */
  #revisionsFrom: string | undefined;
  /**
   * The revision of each route's last delete or purge seen by the watch: a
   * seed may have read the value before it, and must not apply it after.
   */
  readonly #deletedAt = new Map<string, number>();
  /**
   * Set once the bucket opened: JetStream is there, so a read failing after
   * that (a timeout, a leader election) is no reason to fall back to the file.
   */
  #bucketOpened = false;
  /** The highest stream sequence the watch delivered, or the load read past. */
  #watchedSeq = 0;
  /** The stream's last sequence at the previous check: the watch must be past it by now. */
  #seqAtLastCheck = 0;
  /** How the next load seeds missing keys: as at start, or after the bucket was lost. */
  #seedOrigin: SeedOrigin = STARTING_SEED;
  #statuses: (AsyncIterable<Status> & { stop?: () => void }) | undefined;
  /** Failed loads in a row: the retry backs off with them. */
  #failures = 0;
  #running: Promise<void> = Promise.resolve();
  #markSettled: () => void = () => {};
  /** Resolves once the store left "starting" (or was stopped). */
  readonly settled: Promise<void> = new Promise((resolve) => {
    this.#markSettled = resolve;
  });

  constructor(
    state: CutoverState,
    routes: readonly RouteConfig[],
    log: CutoverLog,
    options: CutoverStoreOptions = {},
  ) {
    this.#state = state;
    this.#routes = new Map(routes.map((r) => [r.name, r]));
    this.#log = log;
    this.#retryMs = options.retryMs ?? 1000;
    this.#checkMs = options.checkMs ?? CHECK_MS;
  }

  /** "starting" until the first full load; "file" when the server has no JetStream. */
  get mode(): CutoverStoreMode {
    return this.#mode;
  }

  /** The bucket once opened (live mode). */
  get bucket(): CutoverBucket | undefined {
    return this.#bucket;
  }

  /** The last value applied for the route (live mode). */
  latest(route: string): CutoverRevision | undefined {
    return this.#latest.get(route);
  }

  route(name: string): RouteConfig | undefined {
    return this.#routes.get(name);
  }

  /**
   * Opens the bucket, loads every route, then watches; retries on failure,
   * backing off, until stopped. Without JetStream it serves routes.yaml's
   * values meanwhile ("file"): nats.js cannot tell a server without JetStream
   * from one whose JetStream is not answering yet, so neither is final.
   */
  start(nc: NatsConnection): void {
    if (this.#stopped) return;
    this.#checkOnReconnect(nc);
    this.#running = this.#load(nc).catch((error: unknown) => {
      if (!this.#stopped) this.#retryLater(nc, error);
    });
  }

  #retryLater(nc: NatsConnection, error: unknown): void {
    const delay = Math.min(this.#retryMs * 2 ** this.#failures, MAX_RETRY_MS);
    this.#failures++;
    const noJetStream = isJetStreamMissing(error) || isUnavailable(error);
    if (noJetStream && this.#mode === "starting" && !this.#bucketOpened) {
      this.#mode = "file";
      this.#markSettled();
      this.#log.warn(
        "cutover: the NATS server has no JetStream; serving routes.yaml's cutover values, live changes are off until it answers",
      );
    }
    this.#log.warn(
      `cutover: loading the live state failed (${describe(error)}); retrying in ${delay} ms`,
    );
    this.#retryTimer = setTimeout(() => this.start(nc), delay);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#markSettled();
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#checkTimer);
    this.#statuses?.stop?.();
    this.#watch?.stop();
    await this.#running;
  }

  async #load(nc: NatsConnection): Promise<void> {
    const bucket = await CutoverBucket.open(nc, (message) => this.#log.warn(`cutover: ${message}`));
    this.#bucketOpened = true;
    if (this.#stopped) return;
    // Read before the watch starts: a bucket re-created after this read is caught by the check.
    const { created } = await streamFacts(bucket);
    // Re-created since the last load, whether or not a check saw it go (a
    // reload for a stalled watch, a retry, may land on a new one): its
    // revisions start from 1 again, so the old ones must not outrank them.
    if (this.#revisionsFrom !== undefined && created !== this.#revisionsFrom) {
      this.#latest.clear();
      this.#deletedAt.clear();
    }
    this.#revisionsFrom = created;
    const lostSinceLoaded = this.#streamCreated !== undefined && created !== this.#streamCreated;
    if (lostSinceLoaded && this.#seedOrigin === STARTING_SEED) {
      this.#seedOrigin = lostBucketSeed("was re-created");
    }
    this.#watchedSeq = 0;
    // Watch first, then read: a change landing in between is seen by both, and
    // the revision check keeps the newer one.
    const watch = await bucket.kv.watch({ include: KvWatchInclude.UpdatesOnly });
    this.#watch = watch;
    if (this.#stopped) {
      watch.stop();
      return;
    }
    const watching = this.#follow(watch, nc);
    try {
      for (const route of this.#routes.values()) await this.#seed(bucket, route, this.#seedOrigin);
      // Every write up to here was read by the seeds or comes through the watch.
      this.#watchedSeq = Math.max(this.#watchedSeq, (await streamFacts(bucket)).lastSeq);
      this.#seqAtLastCheck = 0;
    } catch (error) {
      // The retry opens a watch of its own.
      this.#dropWatch();
      throw error;
    }
    this.#bucket = bucket;
    this.#streamCreated = created;
    this.#seedOrigin = STARTING_SEED;
    this.#failures = 0;
    const was = this.#mode;
    this.#mode = "live";
    this.#markSettled();
    if (was !== "live") this.#log.info(`cutover: live state loaded from KV ${CUTOVER_BUCKET}`);
    this.#checking = true;
    this.#scheduleCheck(nc, this.#checkMs);
    await watching;
  }

  async #seed(bucket: CutoverBucket, route: RouteConfig, origin: SeedOrigin): Promise<void> {
    const { live, skipped } = await bucket.seed(route, origin);
    if (skipped !== undefined) {
      const applied = live === undefined ? "routes.yaml's values" : `rev ${live.revision}`;
      this.#log.warn(
        `cutover: ignoring ${route.name} rev ${skipped.revision} (${skipped.why}); applying ${applied}`,
      );
    }
    if (live !== undefined) this.#apply(route.name, live);
    else this.#fileValues(route);
  }

  async #follow(watch: QueuedIterator<KvEntry>, nc: NatsConnection): Promise<void> {
    for await (const entry of watch) {
      // A dropped watch may still hand out what it had queued: the new load reads it anew.
      if (this.#watch !== watch) break;
      this.#watchedSeq = Math.max(this.#watchedSeq, entry.revision);
      if (!this.#routes.has(entry.key)) continue;
      if (entry.operation !== "PUT") {
        this.#revert(entry.key, entry.revision);
        continue;
      }
      const record = decodeRecord(entry);
      if (record === undefined) {
        this.#log.warn(
          `cutover: ignoring malformed value for ${entry.key} (rev ${entry.revision})`,
        );
        continue;
      }
      this.#apply(entry.key, record);
    }
    // A watch dropped on purpose (stop, a failed load, a reload) is replaced elsewhere.
    if (this.#stopped || this.#watch !== watch) return;
    this.#dropWatch();
    this.#log.warn("cutover: the KV watch ended; reloading");
    this.#retryTimer = setTimeout(() => this.start(nc), this.#retryMs);
  }

  /** Stops the current watch; its #follow then ends without reloading. */
  #dropWatch(): void {
    const watch = this.#watch;
    this.#watch = undefined;
    this.#checking = false;
    this.#checkSerial++;
    clearTimeout(this.#checkTimer);
    watch?.stop();
  }

  #scheduleCheck(nc: NatsConnection, delay: number): void {
    clearTimeout(this.#checkTimer);
    this.#checkTimer = setTimeout(() => void this.#check(nc), delay);
    // A check alone must not keep the process alive.
    this.#checkTimer.unref();
  }

  /**
   * A reconnect is when the server may have come back without its JetStream
   * state: check now rather than at the next tick, and rather than wait for a
   * check sent to the old server to time out (only while live; a load in
   * progress, or its retry, reads the bucket anyway).
   */
  #checkOnReconnect(nc: NatsConnection): void {
    if (this.#statuses !== undefined) return;
    const statuses = nc.status();
    this.#statuses = statuses;
    void (async () => {
      for await (const status of statuses) {
        if (status.type === "reconnect" && this.#checking) this.#scheduleCheck(nc, 0);
      }
    })();
  }

  /**
   * Reloads when the bucket's stream is gone or is another one, or when the
   * watch has stalled: in each case it goes silent instead of ending (nats.js
   * keeps re-creating its consumer past the old stream's last sequence; a
   * consumer lost with a cluster node can stay silent for a minute), so
   * nothing else would notice. Stalled: it has not delivered, one check
   * interval later, what the stream already held at the previous check.
   */
  async #check(nc: NatsConnection): Promise<void> {
    const serial = ++this.#checkSerial;
    const bucket = this.#bucket;
    if (!this.#checking || bucket === undefined) return;
    const found = await bucketLost(bucket, this.#streamCreated);
    // Stopped, a reload began (it checks once loaded), or a newer check superseded this one.
    if (this.#stopped || serial !== this.#checkSerial) return;
    if (found.lost !== undefined) {
      this.#log.warn(`cutover: the KV bucket ${CUTOVER_BUCKET} ${found.lost}; reloading`);
      this.#seedOrigin = lostBucketSeed(found.lost);
      this.#reload(nc);
      return;
    }
    if (found.lastSeq === undefined) {
      // No answer (NATS away, JetStream slow): it proves nothing; ask again next time.
      this.#scheduleCheck(nc, this.#checkMs);
      return;
    }
    const stalledAt = this.#watchedSeq < this.#seqAtLastCheck ? this.#watchedSeq : undefined;
    this.#seqAtLastCheck = found.lastSeq;
    if (stalledAt !== undefined) {
      this.#log.warn(
        `cutover: the KV watch stalled (delivered up to rev ${stalledAt}, the bucket holds rev ${this.#seqAtLastCheck}); reloading`,
      );
      this.#reload(nc);
      return;
    }
    this.#scheduleCheck(nc, this.#checkMs);
  }

  #reload(nc: NatsConnection): void {
    this.#dropWatch();
    this.start(nc);
  }

  #apply(route: string, record: CutoverRevision): void {
    const known = this.#latest.get(route)?.revision ?? this.#deletedAt.get(route);
    if (known !== undefined && known >= record.revision) return;
    const config = this.#routes.get(route);
    if (config !== undefined) {
      try {
        checkRouteAllows(config, record);
      } catch (error) {
        this.#log.warn(`cutover: ignoring ${route} rev ${record.revision}: ${describe(error)}`);
        return;
      }
    }
    this.#latest.set(route, record);
    this.#state.set(route, pickValues(record), "live");
    this.#log.info(
      `cutover: ${route} nats=${record.nats} shadow=${record.shadow} by ${record.by}: ${record.reason}`,
    );
  }

  /** A deleted key: back to routes.yaml's values. */
  #revert(route: string, revision: number): void {
    const config = this.#routes.get(route);
    if (config === undefined) return;
    const known = this.#latest.get(route)?.revision ?? this.#deletedAt.get(route) ?? 0;
    if (known >= revision) return;
    this.#fileValues(config);
    this.#deletedAt.set(route, revision);
    this.#log.warn(`cutover: ${route} deleted from KV (rev ${revision}); using routes.yaml`);
  }

  /** No live value applies to the route: routes.yaml's values. */
  #fileValues(route: RouteConfig): void {
    this.#latest.delete(route.name);
    this.#state.set(route.name, pickValues(route.cutover), "file");
  }
}

/**
 * The bucket's stream's creation time, which tells a re-created bucket from
 * the one watched, and its last sequence, which a watch keeping up reaches.
 */
async function streamFacts(bucket: CutoverBucket): Promise<{ created: string; lastSeq: number }> {
  const { streamInfo } = await bucket.kv.status();
  return { created: streamInfo.created, lastSeq: streamInfo.state.last_seq };
}

/**
 * How the bucket was lost ("is gone", "was re-created"), else its last
 * sequence; neither when no answer came: a timeout or a JetStream not
 * answering yet proves nothing, and the next check asks again.
 */
async function bucketLost(
  bucket: CutoverBucket,
  watched: string | undefined,
): Promise<{ lost?: string; lastSeq?: number }> {
  try {
    const { created, lastSeq } = await streamFacts(bucket);
    return created === watched ? { lastSeq } : { lost: "was re-created" };
  } catch (error) {
    return isStreamMissing(error)
      ? { lost: "is gone (deleted, or the server lost its JetStream state)" }
      : {};
  }
}

/** JetStream's "stream not found" (10059): an answer, unlike a timeout. */
function isStreamMissing(error: unknown): boolean {
  return error instanceof Error && error.name === "StreamNotFoundError";
}

/**
 * Opens a KV bucket, creating it replicated across the cluster, and raises an
 * existing one made with fewer replicas (by an older version) or a shorter
 * history (by hand: `nats kv add` keeps 1 revision) to these. `warn` says
 * what was raised; a history that cannot be raised (the server refuses, the
 * user may not update streams, no answer) is warned about and kept: the
 * bucket works without it, only its history reaches less far back, and the
 * next open tries again.
 */
export async function openReplicated(
  nc: NatsConnection,
  bucket: string,
  history: number,
  warn: (message: string) => void = () => {},
) {
  const replicas = clusterReplicas(nc);
  const kv = await new Kvm(nc).create(bucket, { history, replicas });
  const { streamInfo } = await kv.status();
  const { name, num_replicas: hadReplicas, max_msgs_per_subject: hadHistory } = streamInfo.config;
  if (hadReplicas < replicas) {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.update(name, { num_replicas: replicas });
    warn(`the KV bucket ${bucket} had ${hadReplicas} replica(s); raised to ${replicas}`);
  }
  // 0 or less: no limit, every revision is kept already.
  if (hadHistory > 0 && hadHistory < history) {
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.update(name, { max_msgs_per_subject: history });
      warn(`the KV bucket ${bucket} kept ${hadHistory} revision(s) per key; raised to ${history}`);
    } catch (error) {
      warn(
        `the KV bucket ${bucket} keeps ${hadHistory} revision(s) per key and raising it to ${history} failed (${describe(error)}): its history shows only the last ${hadHistory}, and a rollback finds no value older than those`,
      );
    }
  }
  return kv;
}

/** A KV call that failed (timeout, no JetStream quorum, connection closed): a 503 naming what. */
function kvFailure(what: string, error: unknown): TurnoutError {
  if (error instanceof TurnoutError) return error;
  const why = isJetStreamMissing(error)
    ? `JetStream does not answer for the KV bucket ${CUTOVER_BUCKET} (the server has no JetStream, or the servers holding the bucket are down)`
    : describe(error);
  return new TurnoutError("TURNOUT_ERR_CUTOVER_UNAVAILABLE", `${what}: ${why}`, {
    cause: error,
  });
}

/** JetStream's "wrong last sequence" (10071): another write landed since the revision read. */
function isRevisionConflict(error: unknown): boolean {
  const e = error as { api_error?: { err_code?: number } } | null;
  return e?.api_error?.err_code === 10071 || /wrong last sequence/i.test(describe(error));
}

/**
 * The value a replica applies, by the replicas' rules, from a key's entries
 * (oldest first) up to `end` (exclusive): the newest value since the key was
 * last deleted or purged that is well formed and that the route allows (a
 * running replica ignores any other and keeps the one before). No `live`
 * means routes.yaml's values; `index` is the entry of `live`, else of the
 * DEL/PURGE that stopped the walk, else -1 (no entry left to walk). The one
 * rule for a replica's seed, #read (current, change) and rollback.
 */
export function appliedValue(
  route: RouteConfig,
  entries: readonly KvEntry[],
  end = entries.length,
): { readonly live?: CutoverRevision; readonly index: number } {
  for (let index = end - 1; index >= 0; index--) {
    const entry = entries[index] as KvEntry;
    if (entry.operation !== "PUT") return { index };
    const record = decodeRecord(entry);
    if (record !== undefined && refusal(route, record) === undefined)
      return { live: record, index };
  }
  return { index: -1 };
}

/** The route's rule `values` break (checkRouteAllows), undefined when it allows them. */
function refusal(route: RouteConfig, values: CutoverValues): string | undefined {
  try {
    checkRouteAllows(route, values);
    return undefined;
  } catch (error) {
    return describe(error);
  }
}

function pickValues(values: CutoverValues): CutoverValues {
  return { nats: values.nats, shadow: values.shadow };
}

function now(): string {
  return new Date().toISOString();
}

function isUnavailable(error: unknown): boolean {
  return error instanceof TurnoutError && error.code === "TURNOUT_ERR_CUTOVER_UNAVAILABLE";
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
