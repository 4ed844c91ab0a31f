/**
 * Which replica leads the progressive cutover plans: a lease in the NATS KV
 * bucket `turnout_leases`. The holder renews it (a compare-and-set update on
 * its own revision) every `renewMs`; another replica takes it over when the
 * key's revision has not moved for `ttlMs` of its own clock (no clock is
 * compared across machines), and the compare-and-set lets only one win.
 * A replica that stops cleanly deletes its lease so another takes over at once.
 */
import { hostname } from "node:os";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { openReplicated } from "./cutover-store.js";

export const LEASE_BUCKET = "turnout_leases";
export const PLAN_LEASE_KEY = "cutover-plan";

export interface LeaseOptions {
  /** A lease not renewed for this long is taken over, in ms. */
  readonly ttlMs: number;
}

export function replicaId(): string {
  return `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

export class Lease {
  readonly #kv: KV;
  readonly #holder: string;
  readonly #ttlMs: number;
  #revision = 0;
  #leader = false;
  /** The other holder's revision as last seen, and since when (local clock). */
  #seen = { revision: -1, since: 0 };

  private constructor(kv: KV, holder: string, options: LeaseOptions) {
    this.#kv = kv;
    this.#holder = holder;
    this.#ttlMs = options.ttlMs;
  }

  /** Opens (or creates) the lease bucket; throws when the server has no JetStream. */
  static async open(nc: NatsConnection, holder: string, options: LeaseOptions): Promise<Lease> {
    const kv = await openReplicated(nc, LEASE_BUCKET, 1);
    return new Lease(kv, holder, options);
  }

  get isLeader(): boolean {
    return this.#leader;
  }

  get holder(): string {
    return this.#holder;
  }

  /** Renews or tries to take the lease; answers whether this replica leads now. */
  async tick(now = Date.now()): Promise<boolean> {
    const value = new TextEncoder().encode(JSON.stringify({ holder: this.#holder, at: now }));
    if (this.#leader) {
      try {
        this.#revision = await this.#kv.update(PLAN_LEASE_KEY, value, this.#revision);
      } catch {
        this.#leader = await this.#stillOurs();
      }
      return this.#leader;
    }
    const entry = await this.#kv.get(PLAN_LEASE_KEY);
    if (entry === null || entry.operation !== "PUT") {
      return this.#take(() =>
        entry === null
          ? this.#kv.create(PLAN_LEASE_KEY, value)
          : this.#kv.update(PLAN_LEASE_KEY, value, entry.revision),
      );
    }
    if (entry.revision !== this.#seen.revision) {
      this.#seen = { revision: entry.revision, since: now };
      return false;
    }
    if (now - this.#seen.since < this.#ttlMs) return false;
    return this.#take(() => this.#kv.update(PLAN_LEASE_KEY, value, entry.revision));
  }

  /** Gives the lease up if held, so another replica takes over without waiting. */
  async release(): Promise<void> {
    if (!this.#leader) return;
    this.#leader = false;
    try {
      await this.#kv.delete(PLAN_LEASE_KEY, { previousSeq: this.#revision });
    } catch {
      // Someone else holds it already, or the connection is gone: the TTL covers it.
    }
  }

  /**
   * After a failed renewal: a renewal that landed unseen (a timeout, or an
   * overlapping one) moved the revision, but the lease is still ours; adopt
   * that revision rather than step down.
   */
  async #stillOurs(): Promise<boolean> {
    try {
      const entry = await this.#kv.get(PLAN_LEASE_KEY);
      if (entry === null || entry.operation !== "PUT") return false;
      const value = JSON.parse(new TextDecoder().decode(entry.value)) as { holder?: unknown };
      if (value.holder !== this.#holder) return false;
      this.#revision = entry.revision;
      return true;
    } catch {
      return false;
    }
  }

  async #take(write: () => Promise<number>): Promise<boolean> {
    try {
      this.#revision = await write();
      this.#leader = true;
    } catch {
      this.#leader = false;
    }
    return this.#leader;
  }
}
