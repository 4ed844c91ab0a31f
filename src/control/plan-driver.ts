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
import type { CutoverLog, CutoverRevision, CutoverStore } from "./cutover-store.js";
import { addFigures, emptyFigures, evaluatePlan, type WindowFigures } from "./plan-evaluate.js";
import { isStreamMissing, Lease, replicaId } from "./plan-lease.js";
import {
  decodeReport,
  encodeReport,
  LocalStats,
  latencyBoundsMs,
  STATS_SUBJECT,
  sameBounds,
  servedBy,
} from "./plan-stats.js";
import { PLAN_BY, type PlanStatus, planStatus } from "./plan-status.js";

/** The longest wait between two attempts to open the lease bucket, in ms. */
const MAX_OPEN_RETRY_MS = 30_000;
/** Lease checks failing in a row before the lease bucket is opened again. */
const REOPEN_AFTER = 2;

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
  /** When the window came due: it is judged one publish interval later. */
  dueAt: number | undefined;
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
  /** Why the plan could not write a route's last step, until a step lands. */
  readonly #blocked = new Map<string, string>();
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
      (route) => this.#deps.store.latest(route)?.revision ?? 0,
    );
    this.#every(this.#publishMs, () => {
      if (nc.isClosed()) return;
      const report = { replica: this.#replica, bounds: this.#bounds, ...stats.take() };
      nc.publish(STATS_SUBJECT, encodeReport(report));
      for (const route of this.#routes) this.#track(this.#check(route));
    });
    this.#sub = nc.subscribe(STATS_SUBJECT, {
      // Anyone may publish here, and a callback that throws would end the
      // connection's read loop: a report that is not well formed is dropped.
      callback: (_error, msg) => {
        // A lapse of the lease (a renewal answered late) would leave a hole in
        // the windows, judged as if whole once the lease is back: start anew.
        if (!this.isLeader) {
          this.#windows.clear();
          return;
        }
        const report = decodeReport(msg.data);
        if (report === undefined) return;
        for (const [route, figures] of Object.entries(report.routes)) {
          const window = this.#windows.get(route);
          // Figures of a replica still on the previous split are not this
          // window's; nor those of one with other latency buckets (other plan
          // gates: another routes.yaml), whose counts would land in the wrong
          // buckets, and without them a p99 gate would judge blind.
          if (
            window !== undefined &&
            servedBy(report, route, window.revision) &&
            sameBounds(report, this.#bounds)
          ) {
            addFigures(window.figures, figures);
          }
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
    /** Re-opens in a row that did not bring the lease back, for the backoff. */
    let reopens = 0;
    const tick = async () => {
      const lease = this.#lease!;
      const was = this.isLeader;
      try {
        await lease.tick();
      } catch (error) {
        if (!this.#stopped && reopens === 0 && lease.failures <= 1) {
          this.#deps.log.warn(`plan: lease check failed (${describe(error)})`);
        }
      }
      if (this.isLeader && !was) {
        this.#windows.clear();
        this.#deps.log.info(`plan: ${this.#replica} leads the cutover plans`);
      } else if (was && !this.isLeader) {
        this.#deps.log.warn(`plan: ${this.#replica} lost the plan lease`);
      }
      if (!(lease.failures > 0)) {
        if (reopens > 0) {
          this.#deps.log.info("plan: the lease bucket answers again; cutover plans are back on");
        }
        reopens = 0;
        return;
      }
      // The bucket's stream was deleted, or the server lost its JetStream
      // state: every call on the old handle fails until the bucket is made
      // again. Re-open it (which re-creates it), with backoff.
      if (lease.failures < REOPEN_AFTER && !isStreamMissing(lease.lastError)) return;
      if (reopens === 0) {
        this.#deps.log.warn(
          `plan: the lease bucket does not answer (${describe(lease.lastError)}); re-opening it`,
        );
      } else {
        await this.#pause(Math.min(this.#renewMs * 2 ** reopens, MAX_OPEN_RETRY_MS));
      }
      reopens++;
      if (this.#stopped) return;
      const reopened = await this.#leaseBucket(nc);
      if (reopened !== undefined && !this.#stopped) this.#lease = reopened;
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
      window = {
        start: now,
        revision: latest.revision,
        figures: this.#empty(),
        busy: false,
        said,
        dueAt: undefined,
      };
      this.#windows.set(route.name, window);
      return;
    }
    if (window.busy || now - window.start < plan.everyMs) return;
    // Every replica's report of the window's last interval, this one's
    // included, is published now and arrives after this check: judged at the
    // next one, or that interval would never be (a step drops it).
    if (window.dueAt === undefined) {
      window.dueAt = now;
      return;
    }
    if (now - window.dueAt < this.#publishMs / 2) return;
    window.dueAt = undefined;
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
    window.busy = true;
    try {
      checkRouteAllows(route, values);
      // A compare-and-set on the key's latest revision, which may be newer than
      // the value applied when the replicas skipped it (malformed, or refused
      // by the route): the plan's step replaces it. A value the replicas apply
      // that landed meanwhile (an operator's change) wins.
      await bucket.change(route, (live) => {
        const revision = (live as Partial<CutoverRevision>).revision ?? 0;
        if (revision !== latest.revision) throw new StepDropped("the route changed meanwhile");
        // The lease may have lapsed while this replica judged the window.
        if (!this.isLeader) throw new StepDropped("this replica no longer leads");
        return { ...values, by: PLAN_BY, reason: decision.reason };
      });
      this.#blocked.delete(route.name);
      const log = decision.kind === "rollback" ? this.#deps.log.warn : this.#deps.log.info;
      log.call(this.#deps.log, `plan: ${route.name} ${decision.reason}`);
    } catch (error) {
      if (error instanceof StepDropped) {
        this.#deps.log.info(`plan: ${route.name} not changed (${error.message})`);
      } else {
        const why = `cannot write ${decision.to}%: ${describe(error)}`;
        if (this.#blocked.get(route.name) !== why) {
          this.#deps.log.warn(`plan: ${route.name} blocked (${why})`);
        }
        this.#blocked.set(route.name, why);
      }
    } finally {
      window.busy = false;
    }
  }

  /**
   * The route's plan status as this replica sees it: planStatus, or `blocked`
   * while this replica leads and its last step could not be written.
   */
  status(route: RouteConfig): PlanStatus | undefined {
    const blocked = this.isLeader ? this.#blocked.get(route.name) : undefined;
    return planStatus(route, this.#deps.store.latest(route.name), blocked);
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

/** A step not written on purpose: the route moved on, or the lease lapsed. */
class StepDropped extends Error {}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
