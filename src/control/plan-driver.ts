/**
 * Runs the progressive cutover plans of routes.yaml. Every replica publishes
 * its window figures on `turnout.stats`; the replica holding the lease sums
 * them per route and, once a route's window (`every`) is over, judges it
 * (plan-evaluate) and writes the step-up or rollback into the cutover bucket
 * with `by: "plan"` and the reason, so it lands in the history.
 *
 * A plan only moves a route whose latest value was written by the plan or
 * seeded from routes.yaml: any other writer (an operator's `set` or
 * `rollback`) pauses it, and so does the plan's own rollback. Writing a value
 * with `by: "plan"` resumes it. A window starts again whenever the route's
 * value changes, so its figures are all from one split.
 */
import type { NatsConnection, Subscription } from "@nats-io/nats-core";
import type { RouteConfig } from "../config/types.js";
import type { GatewayMetrics } from "../observability/metrics.js";
import { checkRouteAllows } from "./cutover-rules.js";
import { type CutoverLog, type CutoverStore, encodeRecord } from "./cutover-store.js";
import { addFigures, emptyFigures, evaluatePlan, type WindowFigures } from "./plan-evaluate.js";
import { Lease, replicaId } from "./plan-lease.js";
import {
  decodeReport,
  encodeReport,
  LocalStats,
  latencyBoundsMs,
  STATS_SUBJECT,
} from "./plan-stats.js";
import { PLAN_BY, planStatus } from "./plan-status.js";

/** The longest wait between two attempts to open the lease bucket, in ms. */
const MAX_OPEN_RETRY_MS = 30_000;

export interface PlanDriverOptions {
  /** A leader's lease not renewed for this long is taken over (default 3 s). */
  readonly leaseTtlMs?: number;
  /** How often the leader renews, and others check, the lease (default 1 s). */
  readonly renewMs?: number;
  /** How often each replica publishes its figures (default: a quarter of the shortest `every`, at most 1 s). */
  readonly publishMs?: number;
}

export interface PlanDriverDeps {
  readonly metrics: GatewayMetrics;
  readonly store: CutoverStore;
  readonly routes: readonly RouteConfig[];
  readonly log: CutoverLog;
}

interface Window {
  start: number;
  /** The route's KV revision the window's figures belong to. */
  revision: number;
  figures: WindowFigures;
  busy: boolean;
  /** Last hold or pause reason logged, so a steady state logs once. */
  said: string;
}

export class PlanDriver {
  readonly #deps: PlanDriverDeps;
  readonly #routes: readonly RouteConfig[];
  readonly #replica = replicaId();
  readonly #ttlMs: number;
  readonly #renewMs: number;
  readonly #publishMs: number;
  readonly #bounds: number[];
  readonly #windows = new Map<string, Window>();
  #lease: Lease | undefined;
  #timers: NodeJS.Timeout[] = [];
  #sub: Subscription | undefined;
  #stopped = false;
  #pending = new Set<Promise<unknown>>();
  /** Wakes a pending retry wait, so stop() does not wait it out. */
  readonly #wakers = new Set<() => void>();

  constructor(deps: PlanDriverDeps, options: PlanDriverOptions = {}) {
    this.#deps = deps;
    this.#routes = deps.routes.filter((r) => r.cutover.plan !== undefined);
    this.#ttlMs = options.leaseTtlMs ?? 3000;
    this.#renewMs = options.renewMs ?? 1000;
    const shortest = Math.min(...this.#routes.map((r) => r.cutover.plan!.everyMs));
    this.#publishMs = options.publishMs ?? Math.max(20, Math.min(1000, shortest / 4));
    this.#bounds = latencyBoundsMs(deps.metrics);
  }

  /** True while this replica holds the plan lease. */
  get isLeader(): boolean {
    return this.#lease?.isLeader === true;
  }

  get replica(): string {
    return this.#replica;
  }

  start(nc: NatsConnection): void {
    if (this.#routes.length === 0 || this.#stopped) return;
    const stats = new LocalStats(
      this.#deps.metrics,
      this.#routes.map((r) => r.name),
    );
    this.#every(this.#publishMs, () => {
      if (nc.isClosed()) return;
      nc.publish(STATS_SUBJECT, encodeReport({ replica: this.#replica, routes: stats.take() }));
      for (const route of this.#routes) this.#track(this.#check(route));
    });
    this.#sub = nc.subscribe(STATS_SUBJECT, {
      // Anyone may publish here, and a callback that throws would end the
      // connection's read loop: a report that is not well formed is dropped.
      callback: (_error, msg) => {
        if (!this.isLeader) return;
        const report = decodeReport(msg.data);
        if (report === undefined) return;
        for (const [route, figures] of Object.entries(report.routes)) {
          const window = this.#windows.get(route);
          if (window !== undefined) addFigures(window.figures, figures);
        }
      },
    });
    this.#track(this.#openLease(nc));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const timer of this.#timers) clearInterval(timer);
    for (const wake of [...this.#wakers]) wake();
    this.#sub?.unsubscribe();
    await Promise.allSettled([...this.#pending]);
    await this.#lease?.release();
  }

  async #openLease(nc: NatsConnection): Promise<void> {
    this.#lease = await this.#leaseBucket(nc);
    if (this.#lease === undefined || this.#stopped) return;
    const tick = async () => {
      const was = this.isLeader;
      try {
        await this.#lease!.tick();
      } catch (error) {
        if (!this.#stopped) this.#deps.log.warn(`plan: lease check failed (${describe(error)})`);
      }
      if (this.isLeader && !was) {
        this.#windows.clear();
        this.#deps.log.info(`plan: ${this.#replica} leads the cutover plans`);
      } else if (was && !this.isLeader) {
        this.#deps.log.warn(`plan: ${this.#replica} lost the plan lease`);
      }
    };
    await tick();
    this.#every(this.#renewMs, tick);
  }

  /**
   * Opens the lease bucket, retrying with backoff: a JetStream that does not
   * answer yet looks like none at all. Undefined once stopped.
   */
  async #leaseBucket(nc: NatsConnection): Promise<Lease | undefined> {
    for (let failures = 0; !this.#stopped; failures++) {
      try {
        return await Lease.open(nc, this.#replica, { ttlMs: this.#ttlMs });
      } catch (error) {
        const delay = Math.min(this.#renewMs * 2 ** failures, MAX_OPEN_RETRY_MS);
        this.#deps.log.warn(
          `plan: no lease bucket (${describe(error)}); cutover plans are off, retrying in ${delay} ms`,
        );
        await this.#pause(delay);
      }
    }
    return undefined;
  }

  /** Waits `ms`, or less when stop() runs meanwhile. */
  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#wakers.add(wake);
    });
  }

  /** Judges the route's window once it is over (leader only). */
  async #check(route: RouteConfig): Promise<void> {
    const plan = route.cutover.plan!;
    const latest = this.#deps.store.latest(route.name);
    const bucket = this.#deps.store.bucket;
    if (!this.isLeader || latest === undefined || bucket === undefined) return;
    const now = Date.now();
    let window = this.#windows.get(route.name);
    if (window === undefined || window.revision !== latest.revision) {
      const said = window?.said ?? "";
      window = { start: now, revision: latest.revision, figures: this.#empty(), busy: false, said };
      this.#windows.set(route.name, window);
      return;
    }
    if (window.busy || now - window.start < plan.everyMs) return;
    const figures = window.figures;
    window.start = now;
    window.figures = this.#empty();

    const status = planStatus(route, latest);
    if (status?.state === "paused" || status?.state === "stopped") {
      this.#sayOnce(window, `plan: ${route.name} ${status.state}: ${status.detail}`);
      return;
    }
    const decision = evaluatePlan({
      plan,
      current: latest.nats,
      start: route.cutover.nats,
      figures,
      boundsMs: this.#bounds,
    });
    if (decision.kind === "hold") {
      this.#sayOnce(window, `plan: ${route.name} holds at ${latest.nats}%: ${decision.reason}`);
      return;
    }
    const values = { nats: decision.to, shadow: latest.shadow };
    const record = {
      ...values,
      by: PLAN_BY,
      reason: decision.reason,
      at: new Date().toISOString(),
    };
    window.busy = true;
    try {
      checkRouteAllows(route, values);
      // Compare-and-set: an operator's change that landed meanwhile wins.
      await bucket.kv.update(route.name, encodeRecord(record), latest.revision);
      const log = decision.kind === "rollback" ? this.#deps.log.warn : this.#deps.log.info;
      log.call(this.#deps.log, `plan: ${route.name} ${decision.reason}`);
    } catch (error) {
      this.#deps.log.warn(`plan: ${route.name} not changed (${describe(error)})`);
    } finally {
      window.busy = false;
    }
  }

  #sayOnce(window: Window, message: string): void {
    // The figures in a hold reason change every window; log the kind of hold once.
    const kind = message.replace(/\d+(\.\d+)?/g, "#");
    if (window.said === kind) return;
    window.said = kind;
    this.#deps.log.info(message);
  }

  #empty(): WindowFigures {
    return emptyFigures(this.#bounds.length);
  }

  #every(ms: number, fn: () => unknown): void {
    // stop() may have run while the caller awaited (the first lease check): no timer then.
    if (this.#stopped) return;
    let running = false;
    this.#timers.push(
      setInterval(() => {
        // A tick still waiting on NATS (during a reconnect) is not overlapped:
        // two lease renewals on one revision would make the second one fail.
        if (this.#stopped || running) return;
        running = true;
        const done = () => {
          running = false;
        };
        this.#track(Promise.resolve().then(fn).finally(done));
      }, ms),
    );
  }

  #track(promise: Promise<unknown>): void {
    const tracked = promise.catch((error: unknown) => {
      this.#deps.log.warn(`plan: ${describe(error)}`);
    });
    this.#pending.add(tracked);
    void tracked.finally(() => this.#pending.delete(tracked));
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
