/**
 * The live cutover state in the NATS KV bucket `turnout_cutover` (key = route
 * name, value JSON `{nats, shadow, by, reason, at}`). The bucket keeps 64
 * revisions per key: its history is the audit log.
 *
 * `CutoverBucket` reads and writes the bucket (the admin API and the CLI);
 * `CutoverStore` is the gateway's side: it seeds missing keys from routes.yaml,
 * loads every route's live values, then watches the bucket and applies each
 * change to the CutoverState as it arrives. Without JetStream it leaves the
 * file's values in place and says so.
 */
import type { KV, KvEntry } from "@nats-io/kv";
import { Kvm, KvWatchInclude } from "@nats-io/kv";
import type { NatsConnection, QueuedIterator } from "@nats-io/nats-core";
import { isJetStreamMissing } from "../backends/nats/connection.js";
import type { RouteConfig } from "../config/types.js";
import { TurnoutError } from "../errors.js";
import {
  type CutoverChange,
  checkRouteAllows,
  percentProblem,
  type RollbackRequest,
} from "./cutover-rules.js";
import type { CutoverState, CutoverValues } from "./cutover-state.js";

export const CUTOVER_BUCKET = "turnout_cutover";
/** Revisions kept per route: the depth of the audit log. */
export const CUTOVER_HISTORY = 64;
/** `by` of the value written from routes.yaml when a route has no key yet. */
export const SEED_BY = "routes.yaml";

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
  if (entry.operation !== "PUT") return undefined;
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(entry.value));
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (percentProblem(v.nats) !== undefined || percentProblem(v.shadow) !== undefined) {
    return undefined;
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

/** The bucket's operations, for the admin API and the CLI. */
export class CutoverBucket {
  readonly kv: KV;

  private constructor(kv: KV) {
    this.kv = kv;
  }

  /**
   * Opens the bucket, creating it when missing. Throws
   * TURNOUT_ERR_CUTOVER_UNAVAILABLE when the server has no JetStream.
   */
  static async open(nc: NatsConnection): Promise<CutoverBucket> {
    try {
      const kv = await new Kvm(nc).create(CUTOVER_BUCKET, { history: CUTOVER_HISTORY });
      return new CutoverBucket(kv);
    } catch (error) {
      if (!isJetStreamMissing(error)) throw error;
      throw new TurnoutError(
        "TURNOUT_ERR_CUTOVER_UNAVAILABLE",
        "the NATS server has no JetStream: the live cutover state needs it",
        { cause: error },
      );
    }
  }

  /** The route's live value, undefined when the bucket has none. */
  async current(route: string): Promise<CutoverRevision | undefined> {
    const entry = await this.kv.get(route);
    return entry === null ? undefined : decodeRecord(entry);
  }

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
   * Writes `values` only if the route has no key yet; answers the live value
   * either way. A latest value that is not well formed (written by hand, or by
   * another version) is skipped, as running replicas skip it: the last
   * well-formed one applies, else `values`; `skipped` names its revision.
   */
  async seed(route: string, values: CutoverValues): Promise<SeededValue> {
    const record = {
      ...pickValues(values),
      by: SEED_BY,
      reason: "starting values from routes.yaml",
      at: now(),
    };
    try {
      const revision = await this.kv.create(route, encodeRecord(record));
      return { live: { ...record, revision } };
    } catch (error) {
      // Another replica (or the CLI) wrote it first: take theirs.
      const entry = await this.kv.get(route);
      if (entry === null) throw error;
      const live = decodeRecord(entry);
      if (live !== undefined) return { live };
      const lastGood = (await this.history(route)).at(-1);
      return { live: lastGood ?? { ...record, revision: 0 }, skipped: entry.revision };
    }
  }

  /** Every well-formed value the bucket keeps for the route, oldest first. */
  async history(route: string): Promise<CutoverRevision[]> {
    const entries = await this.#entries(route);
    return entries.map(decodeRecord).filter((r): r is CutoverRevision => r !== undefined);
  }

  /**
   * Restores the values before the latest change, recorded as a change of its
   * own ("rollback of <at>", then ": <reason>" when one is given). `check` may
   * refuse the restored values. Fails with
   * TURNOUT_ERR_CUTOVER_CONFLICT when there is no earlier value or another change
   * landed meanwhile.
   */
  async rollback(
    route: string,
    request: RollbackRequest,
    check: (values: CutoverValues) => void = () => {},
  ): Promise<{ readonly from: CutoverRevision; readonly to: CutoverRevision }> {
    const entries = await this.#entries(route);
    const last = entries.at(-1);
    const values = entries.map(decodeRecord).filter((r): r is CutoverRevision => r !== undefined);
    const latest = values.at(-1);
    const before = values.at(-2);
    if (last === undefined || latest === undefined || before === undefined) {
      throw new TurnoutError(
        "TURNOUT_ERR_CUTOVER_CONFLICT",
        `route ${route} has no earlier cutover value to roll back to`,
        { field: "name" },
      );
    }
    check(before);
    const record = {
      ...pickValues(before),
      by: request.by,
      reason: `rollback of ${latest.at}${request.reason === undefined ? "" : `: ${request.reason}`}`,
      at: now(),
    };
    let revision: number;
    try {
      revision = await this.kv.update(route, encodeRecord(record), last.revision);
    } catch (error) {
      if (isRevisionConflict(error)) {
        throw new TurnoutError(
          "TURNOUT_ERR_CUTOVER_CONFLICT",
          `route ${route} changed while rolling back; look at its history and try again`,
          { cause: error },
        );
      }
      // A timeout may hide a write that landed: trying again blindly would roll that back too.
      throw kvFailure(
        `the rollback of ${route} may or may not have been written; read its history before trying again`,
        error,
      );
    }
    return { from: latest, to: { ...record, revision } };
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

export interface SeededValue {
  readonly live: CutoverRevision;
  /** The revision of a latest value that was not well formed, skipped. */
  readonly skipped?: number;
}

export interface CutoverLog {
  info(message: string): void;
  warn(message: string): void;
}

export interface CutoverStoreOptions {
  /** Wait before retrying a failed load, in ms. */
  readonly retryMs?: number;
}

/** The gateway's live view of the bucket, applied to the CutoverState. */
export class CutoverStore {
  readonly #state: CutoverState;
  readonly #routes: ReadonlyMap<string, RouteConfig>;
  readonly #log: CutoverLog;
  readonly #retryMs: number;
  readonly #latest = new Map<string, CutoverRevision>();
  #mode: CutoverStoreMode = "starting";
  #bucket: CutoverBucket | undefined;
  #watch: QueuedIterator<KvEntry> | undefined;
  #stopped = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #running: Promise<void> = Promise.resolve();

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

  /** Opens the bucket, loads every route, then watches; retries on failure until stopped. */
  start(nc: NatsConnection): void {
    if (this.#stopped) return;
    this.#running = this.#load(nc).catch((error: unknown) => {
      if (this.#stopped) return;
      if (isJetStreamMissing(error) || isUnavailable(error)) {
        this.#mode = "file";
        this.#log.warn(
          "cutover: the NATS server has no JetStream; serving routes.yaml's cutover values, live changes are off",
        );
        return;
      }
      this.#log.warn(`cutover: loading the live state failed (${describe(error)}); retrying`);
      this.#retryTimer = setTimeout(() => this.start(nc), this.#retryMs);
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    this.#watch?.stop();
    await this.#running;
  }

  async #load(nc: NatsConnection): Promise<void> {
    const bucket = await CutoverBucket.open(nc);
    if (this.#stopped) return;
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
      for (const route of this.#routes.values()) await this.#seed(bucket, route);
    } catch (error) {
      // The retry opens a watch of its own.
      watch.stop();
      throw error;
    }
    this.#bucket = bucket;
    const was = this.#mode;
    this.#mode = "live";
    if (was !== "live") this.#log.info(`cutover: live state loaded from KV ${CUTOVER_BUCKET}`);
    await watching;
  }

  async #seed(bucket: CutoverBucket, route: RouteConfig): Promise<void> {
    const { live, skipped } = await bucket.seed(route.name, route.cutover);
    if (skipped !== undefined) {
      const applied = live.revision === 0 ? "routes.yaml's values" : `rev ${live.revision}`;
      this.#log.warn(
        `cutover: ignoring malformed value for ${route.name} (rev ${skipped}); applying ${applied}`,
      );
    }
    this.#apply(route.name, live);
  }

  async #follow(watch: QueuedIterator<KvEntry>, nc: NatsConnection): Promise<void> {
    for await (const entry of watch) {
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
    if (!this.#stopped) {
      this.#log.warn("cutover: the KV watch ended; reloading");
      this.#retryTimer = setTimeout(() => this.start(nc), this.#retryMs);
    }
  }

  #apply(route: string, record: CutoverRevision): void {
    const known = this.#latest.get(route);
    if (known !== undefined && known.revision >= record.revision) return;
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
    this.#latest.delete(route);
    this.#state.set(route, { nats: config.cutover.nats, shadow: config.cutover.shadow }, "file");
    this.#log.warn(`cutover: ${route} deleted from KV (rev ${revision}); using routes.yaml`);
  }
}

/** A KV call that failed (timeout, no JetStream quorum, connection closed): a 503 naming what. */
function kvFailure(what: string, error: unknown): TurnoutError {
  if (error instanceof TurnoutError) return error;
  return new TurnoutError("TURNOUT_ERR_CUTOVER_UNAVAILABLE", `${what}: ${describe(error)}`, {
    cause: error,
  });
}

/** JetStream's "wrong last sequence" (10071): another write landed since the revision read. */
function isRevisionConflict(error: unknown): boolean {
  const e = error as { api_error?: { err_code?: number } } | null;
  return e?.api_error?.err_code === 10071 || /wrong last sequence/i.test(describe(error));
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
