/**
 * Which replica leads the progressive cutover plans: a lease in the NATS KV
 * bucket `turnout_leases`. The holder renews it (a compare-and-set update on
 * its own revision) every `renewMs`; another replica takes it over when the
 * key's revision has not moved for `ttlMs` of its own clock (no clock is
 * compared across machines), and the compare-and-set lets only one win.
 * A replica that stops cleanly deletes its lease so another takes over at once.
 */
import { hostname } from "node:os";
import type { KV, KvEntry } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { openReplicated } from "./cutover-store.js";

export const LEASE_BUCKET = "turnout_leases";
export const PLAN_LEASE_KEY = "cutover-plan";

export interface LeaseOptions {
  /** A lease not renewed for this long is taken over, in ms. */
  readonly ttlMs: number;
}

/**
 * The holder stops counting itself leader this share of the TTL before another
 * replica may take the lease over, so clock-rate drift and a slow tick never
 * give two leaders at once.
 */
const LEASE_MARGIN = 0.2;

export function replicaId(): string {
  return `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

export class Lease {
  readonly #kv: KV;
  readonly #holder: string;
  readonly #ttlMs: number;
  /** How long one KV call may take before the lease counts it failed. */
  readonly #callMs: number;
  #revision = 0;
  #leader = false;
  /** When (local clock) the last renewal or take-over that landed was sent. */
  #renewStart = 0;
  /** The other holder's revision as last seen, and since when (local clock). */
  #seen = { revision: -1, since: 0 };
  #failures = 0;
  #lastError: unknown;

  private constructor(kv: KV, holder: string, options: LeaseOptions) {
    this.#kv = kv;
    this.#holder = holder;
    this.#ttlMs = options.ttlMs;
    this.#callMs = Math.max(1, Math.floor(options.ttlMs / 2));
  }

  /** Opens (or creates) the lease bucket; throws when the server has no JetStream. */
  static async open(nc: NatsConnection, holder: string, options: LeaseOptions): Promise<Lease> {
    const kv = await openReplicated(nc, LEASE_BUCKET, 1);
    return new Lease(kv, holder, options);
  }

  /**
   * True while this replica holds the lease: it took or renewed it less than
   * the TTL less a margin ago, counted from when that write was sent (a later
   * take-over by another replica needs a full TTL from when it saw the write).
   * It turns false on its own when renewals stall, before anyone else may lead.
   */
  get isLeader(): boolean {
    return this.#leader && Date.now() - this.#renewStart < this.#ttlMs * (1 - LEASE_MARGIN);
  }

  get holder(): string {
    return this.#holder;
  }

  /** Ticks in a row whose NATS calls failed or timed out (not lost compare-and-sets). */
  get failures(): number {
    return this.#failures;
  }

  /** The error of the last failed tick, if the last tick failed. */
  get lastError(): unknown {
    return this.#lastError;
  }

  /**
   * Renews or tries to take the lease; answers whether this replica leads now.
   * Each NATS call gives up after half the TTL. Throws when NATS fails while
   * not leading (the lease is not ours either way).
   */
  async tick(now = Date.now()): Promise<boolean> {
    const value = new TextEncoder().encode(JSON.stringify({ holder: this.#holder, at: now }));
    if (this.#leader) {
      try {
        this.#revision = await this.#call(this.#kv.update(PLAN_LEASE_KEY, value, this.#revision));
        this.#renewStart = now;
        this.#ok();
      } catch (error) {
        if (!isRevisionConflict(error)) this.#failed(error);
        this.#leader = await this.#stillOurs();
      }
      return this.isLeader;
    }
    let entry: KvEntry | null;
    try {
      entry = await this.#call(this.#kv.get(PLAN_LEASE_KEY));
    } catch (error) {
      this.#failed(error);
      throw error;
    }
    this.#ok();
    if (entry === null || entry.operation !== "PUT") {
      const revision = entry?.revision;
      return this.#take(now, () =>
        revision === undefined
          ? this.#kv.create(PLAN_LEASE_KEY, value)
          : this.#kv.update(PLAN_LEASE_KEY, value, revision),
      );
    }
    if (entry.revision !== this.#seen.revision) {
      this.#seen = { revision: entry.revision, since: now };
      return false;
    }
    if (now - this.#seen.since < this.#ttlMs) return false;
    const revision = entry.revision;
    return this.#take(now, () => this.#kv.update(PLAN_LEASE_KEY, value, revision));
  }

  /** Gives the lease up if held, so another replica takes over without waiting. */
  async release(): Promise<void> {
    if (!this.#leader) return;
    this.#leader = false;
    try {
      await this.#call(this.#kv.delete(PLAN_LEASE_KEY, { previousSeq: this.#revision }));
    } catch {
      // Someone else holds it already, or the connection is gone: the TTL covers it.
    }
  }

  /**
   * After a failed renewal: a renewal that landed unseen (a timeout, or an
   * overlapping one) moved the revision, but the lease is still ours; adopt
   * that revision rather than step down. It does not extend the lease: the
   * next renewal on the adopted revision does.
   */
  async #stillOurs(): Promise<boolean> {
    try {
      const entry = await this.#call(this.#kv.get(PLAN_LEASE_KEY));
      if (entry === null || entry.operation !== "PUT") return false;
      const value = JSON.parse(new TextDecoder().decode(entry.value)) as { holder?: unknown };
      if (value.holder !== this.#holder) return false;
      this.#revision = entry.revision;
      return true;
    } catch (error) {
      this.#failed(error);
      return false;
    }
  }

  async #take(now: number, write: () => Promise<number>): Promise<boolean> {
    try {
      this.#revision = await this.#call(write());
      this.#renewStart = now;
      this.#leader = true;
    } catch (error) {
      if (!isRevisionConflict(error)) this.#failed(error);
      this.#leader = false;
    }
    return this.isLeader;
  }

  /** The call's answer, or a TimeoutError after half the TTL (the call may still land). */
  #call<T>(call: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () =>
          reject(new LeaseTimeoutError(`the lease bucket did not answer in ${this.#callMs} ms`)),
        this.#callMs,
      );
    });
    // A call that answers after the timeout must not become an unhandled rejection.
    call.catch(() => {});
    return Promise.race([call, timeout]).finally(() => clearTimeout(timer));
  }

  #ok(): void {
    this.#failures = 0;
    this.#lastError = undefined;
  }

  #failed(error: unknown): void {
    this.#failures++;
    this.#lastError = error;
  }
}

export class LeaseTimeoutError extends Error {
  override name = "TimeoutError";
}

/** JetStream's "wrong last sequence" (10071), or a create on a key that exists (10164). */
function isRevisionConflict(error: unknown): boolean {
  const e = error as { api_error?: { err_code?: number }; message?: unknown } | null;
  const code = e?.api_error?.err_code;
  return (
    code === 10071 ||
    code === 10164 ||
    /wrong last sequence|key exists/i.test(String(e?.message ?? ""))
  );
}

/** JetStream answered that the lease stream is gone (deleted, or its state lost). */
export function isStreamMissing(error: unknown): boolean {
  const e = error as { api_error?: { err_code?: number }; message?: unknown } | null;
  return e?.api_error?.err_code === 10059 || /stream not found/i.test(String(e?.message ?? ""));
}
