/**
 * `/metrics` under `--workers N`: one scrape answers for all N processes.
 *
 * The admin port is shared, so a scrape lands on an arbitrary worker. That
 * worker asks the primary over IPC (`ASK` with a request id); the primary runs
 * one collection round: it asks every worker that has joined (`COLLECT`) for
 * its registry as JSON (`REPORT`), merges them with prom-client's
 * `AggregatorRegistry.aggregate` by each metric's `aggregator` (counters and
 * histograms summed, see metrics.ts for the gauges), renders the text and
 * sends it back (`ANSWER`).
 *
 * Only joined workers are asked: a worker sends `JOINED` once its listener for
 * `COLLECT` is installed (`joinClusterMetrics`, first thing in `serve`), and
 * leaves the set when it disconnects or exits. A freshly forked replacement is
 * still loading its modules; asked then, it would drop the request and fail
 * every scrape of the next 5 s (prom-client's `clusterMetrics()` asks every
 * connected worker, hence this module's own round). It has served nothing yet,
 * so leaving it out until it joins loses no count.
 *
 * A scrape never hangs: a round gives up after `ROUND_TIMEOUT_MS` when a joined
 * worker does not answer, and the asking worker gives up after
 * `CLUSTER_SCRAPE_TIMEOUT_MS` when the primary does not. Either way the scrape
 * fails as a whole (503) rather than answering a partial sum, which Prometheus
 * would read as counter resets. A worker that dies during a round is no longer
 * waited for.
 *
 * A dead worker's counts stay in every later sum: the primary keeps each joined
 * worker's latest report, and when the worker disconnects or exits it folds the
 * counters and histograms of that report (summed ones; never gauges, whose
 * value is no count) into one retained set of departed series, added to every
 * later round. So every counter and histogram bucket, sum and count only goes
 * up across worker deaths and replacements, and the departed set grows with
 * the series, not with the number of dead workers. What a worker counted after
 * the last round it answered is lost (it never reported it): the sum then
 * misses those increments, but still never decreases.
 *
 * Without node:cluster none of this runs: a single gateway renders its own registry.
 */
import cluster, { type Worker } from "node:cluster";
import {
  AggregatorRegistry,
  type MetricObjectWithValues,
  type MetricValue,
  type Registry,
} from "prom-client";
import { TurnoutError } from "../errors.js";

const ASK = "turnout:cluster-metrics:ask";
const ANSWER = "turnout:cluster-metrics:answer";
const JOINED = "turnout:cluster-metrics:joined";
const COLLECT = "turnout:cluster-metrics:collect";
const REPORT = "turnout:cluster-metrics:report";

/** The primary's wait for every joined worker's registry in one round. */
const ROUND_TIMEOUT_MS = 5000;

/** A worker's wait for the primary's answer (a bit longer than the primary's round). */
export const CLUSTER_SCRAPE_TIMEOUT_MS = 5500;

interface AskMessage {
  type: typeof ASK;
  id: number;
}
type AnswerMessage =
  | { type: typeof ANSWER; id: number; text: string }
  | { type: typeof ANSWER; id: number; error: string };
interface JoinedMessage {
  type: typeof JOINED;
}
interface CollectMessage {
  type: typeof COLLECT;
  id: number;
}
type WorkerMetrics = MetricObjectWithValues<MetricValue<string>>[];
type ReportMessage =
  | { type: typeof REPORT; id: number; metrics: WorkerMetrics[] }
  | { type: typeof REPORT; id: number; error: string };

function isMessage<T extends { type: string }>(message: unknown, type: T["type"]): message is T {
  return (
    typeof message === "object" &&
    message !== null &&
    (message as { type?: unknown }).type === type &&
    (type === JOINED || typeof (message as { id?: unknown }).id === "number")
  );
}

/** A failed IPC send (the worker or the primary just died): that side does not answer. */
const ignoreSendError = (_error: Error | null) => {};

/** One collection round in the primary: the workers it still waits for and their reports. */
interface Round {
  readonly id: number;
  readonly waiting: Set<Worker>;
  readonly reports: Map<Worker, WorkerMetrics[]>;
  readonly done: (error: string | undefined) => void;
}

/** One departed series: its sample name (histograms: `_bucket`, `_sum`, `_count`) and labels. */
function seriesKey(value: MetricValue<string> & { metricName?: string }): string {
  const labels = Object.entries(value.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([value.metricName ?? "", labels]);
}

/**
 * The counters and histograms of departed workers, summed into one set of
 * series: bounded by the series, not by how many workers died.
 */
class DepartedCounts {
  readonly #metrics = new Map<
    string,
    { metric: WorkerMetrics[number]; values: Map<string, MetricValue<string>> }
  >();
  #report: WorkerMetrics = [];

  /** The departed series, as one more worker's report for `AggregatorRegistry.aggregate`. */
  get report(): WorkerMetrics {
    return this.#report;
  }

  /** Adds the summed counters and histograms of a departed worker's last report. */
  fold(report: readonly WorkerMetrics[]): void {
    let folded = false;
    for (const metric of report.flat()) {
      // The JSON carries the type as prom-client's text ("counter"), not its typings' enum.
      const type: unknown = metric.type;
      if (type !== "counter" && type !== "histogram") continue;
      if (metric.aggregator !== "sum") continue; // only a sum carries a dead worker's share
      let kept = this.#metrics.get(metric.name);
      if (kept === undefined) {
        const { values: _values, ...family } = metric;
        kept = { metric: { ...family, values: [] }, values: new Map() };
        this.#metrics.set(metric.name, kept);
      }
      for (const value of metric.values) {
        const key = seriesKey(value);
        const sum = kept.values.get(key);
        if (sum !== undefined) sum.value += value.value;
        else kept.values.set(key, { ...value, labels: { ...value.labels } });
      }
      folded = true;
    }
    if (!folded) return;
    this.#report = [...this.#metrics.values()].map(({ metric, values }) => ({
      ...metric,
      values: [...values.values()].map((value) => ({ ...value })),
    }));
  }
}

let serving = false;

/**
 * Primary, before forking: answers the workers' `ASK`s with the metrics of all
 * joined workers. Concurrent asks share one collection round. Idempotent.
 */
export function serveClusterMetrics(): void {
  if (!cluster.isPrimary || serving) return;
  serving = true;
  const joined = new Set<Worker>();
  /** Each joined worker's latest report: its counts are kept once it is gone. */
  const latest = new Map<Worker, WorkerMetrics[]>();
  const departed = new DepartedCounts();
  const guarded = new WeakSet<Worker>();
  const rounds = new Map<number, Round>();
  let nextRoundId = 0;
  let current: Promise<string> | undefined;

  // An 'error' on a worker's IPC channel (EPIPE sending to a worker that just
  // died) would otherwise be thrown in the primary and stop every worker.
  // The worker simply does not answer; its exit or disconnect follows.
  const guard = (worker: Worker) => {
    if (guarded.has(worker)) return;
    guarded.add(worker);
    worker.on("error", () => {});
  };
  const leave = (worker: Worker) => {
    joined.delete(worker);
    const last = latest.get(worker);
    if (last !== undefined) {
      latest.delete(worker);
      departed.fold(last); // before any round completes below: its sum counts them once
    }
    for (const round of rounds.values()) {
      round.reports.delete(worker); // counted among the departed now
      if (round.waiting.delete(worker) && round.waiting.size === 0) round.done(undefined);
    }
  };
  cluster.on("fork", guard);
  cluster.on("disconnect", leave);
  cluster.on("exit", leave);

  const collect = (): Promise<string> =>
    new Promise<string>((resolve, reject) => {
      const id = nextRoundId++;
      const round: Round = {
        id,
        waiting: new Set(),
        reports: new Map(),
        done: (error) => {
          if (!rounds.delete(id)) return; // settled already
          clearTimeout(timer);
          if (error !== undefined) {
            reject(new Error(error));
            return;
          }
          try {
            const reports = [...round.reports.values()].flat();
            resolve(AggregatorRegistry.aggregate([...reports, departed.report]).metrics());
          } catch (failure) {
            reject(failure);
          }
        },
      };
      const timer = setTimeout(() => {
        const silent = [...round.waiting].map((worker) => worker.process.pid);
        const who = `worker${silent.length > 1 ? "s" : ""} ${silent.join(", ")}`;
        round.done(`${who} did not answer within ${ROUND_TIMEOUT_MS} ms`);
      }, ROUND_TIMEOUT_MS);
      rounds.set(id, round);
      for (const worker of joined) {
        if (!worker.isConnected()) {
          leave(worker); // gone; its disconnect event is on its way
          continue;
        }
        round.waiting.add(worker);
      }
      if (round.waiting.size === 0) {
        round.done(undefined);
        return;
      }
      const ask: CollectMessage = { type: COLLECT, id };
      for (const worker of [...round.waiting]) worker.send(ask, ignoreSendError);
    });

  cluster.on("message", (worker: Worker, message: unknown) => {
    if (isMessage<JoinedMessage>(message, JOINED)) {
      guard(worker);
      if (worker.isConnected()) joined.add(worker);
      return;
    }
    if (isMessage<ReportMessage>(message, REPORT)) {
      const round = rounds.get(message.id);
      if (round === undefined || !round.waiting.delete(worker)) return; // late, or not asked
      if ("error" in message) {
        round.done(`worker ${worker.process.pid}: ${message.error}`);
        return;
      }
      latest.set(worker, message.metrics); // even if the round fails: it is the worker's latest
      round.reports.set(worker, message.metrics);
      if (round.waiting.size === 0) round.done(undefined);
      return;
    }
    if (!isMessage<AskMessage>(message, ASK)) return;
    const reply = (answer: AnswerMessage) => {
      if (worker.isConnected()) worker.send(answer, ignoreSendError);
    };
    current ??= collect().finally(() => {
      current = undefined;
    });
    current.then(
      (text) => reply({ type: ANSWER, id: message.id, text }),
      (error: unknown) =>
        reply({
          type: ANSWER,
          id: message.id,
          error: `workers did not all report their metrics: ${error instanceof Error ? error.message : String(error)}`,
        }),
    );
  });
}

/** The IPC channel of a worker to its primary (`process` in a cluster worker; a fake in tests). */
export interface PrimaryChannel {
  readonly connected: boolean;
  send(message: AskMessage): unknown;
  on(event: "message", listener: (message: unknown) => void): unknown;
}

/** A worker's view of the cluster-wide metrics. */
export class ClusterMetricsClient {
  readonly #channel: PrimaryChannel;
  readonly #timeoutMs: number;
  readonly #pending = new Map<
    number,
    { resolve: (text: string) => void; reject: (error: TurnoutError) => void }
  >();
  #nextId = 0;

  constructor(channel: PrimaryChannel, timeoutMs = CLUSTER_SCRAPE_TIMEOUT_MS) {
    this.#channel = channel;
    this.#timeoutMs = timeoutMs;
    channel.on("message", (message) => {
      if (!isMessage<AnswerMessage>(message, ANSWER)) return;
      const pending = this.#pending.get(message.id);
      if (pending === undefined) return; // answered after our timeout
      this.#pending.delete(message.id);
      if ("text" in message) pending.resolve(message.text);
      else pending.reject(unavailable(message.error));
    });
  }

  /** The Prometheus text of all workers; rejects (never hangs) when the primary cannot tell. */
  scrape(): Promise<string> {
    if (!this.#channel.connected) {
      return Promise.reject(unavailable("no IPC channel to the cluster primary"));
    }
    const id = this.#nextId++;
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(unavailable(`the cluster primary did not answer within ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
      this.#pending.set(id, {
        resolve: (text) => {
          clearTimeout(timer);
          resolve(text);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.#channel.send({ type: ASK, id });
    });
  }
}

function unavailable(why: string): TurnoutError {
  return new TurnoutError("TURNOUT_ERR_METRICS_UNAVAILABLE", why);
}

let client: ClusterMetricsClient | undefined;
let joinedCluster = false;
/** What this worker reports to the primary's rounds: nothing until `reportClusterMetrics`. */
let reported: readonly Registry[] = [];

/**
 * Worker: answer the primary's collection rounds, then tell the primary so
 * (`JOINED`): it asks only workers that have joined. Called as early as
 * possible; reports nothing until `reportClusterMetrics` names the registry.
 * Idempotent; a no-op outside a worker.
 */
export function joinClusterMetrics(): void {
  if (!cluster.isWorker || joinedCluster) return;
  joinedCluster = true;
  process.on("message", (message: unknown) => {
    if (!isMessage<CollectMessage>(message, COLLECT)) return;
    const send = (report: ReportMessage) => {
      if (process.connected) process.send?.(report, undefined, undefined, ignoreSendError);
    };
    Promise.all(reported.map((registry) => registry.getMetricsAsJSON())).then(
      (metrics) => send({ type: REPORT, id: message.id, metrics }),
      (error: unknown) =>
        send({
          type: REPORT,
          id: message.id,
          error: error instanceof Error ? error.message : String(error),
        }),
    );
  });
  const joined: JoinedMessage = { type: JOINED };
  if (process.connected) process.send?.(joined, undefined, undefined, ignoreSendError);
}

/**
 * In a cluster worker: reports `registry` to the primary's aggregation and
 * returns the client that scrapes the whole cluster. Outside one: undefined
 * (the caller renders its own registry).
 */
export function reportClusterMetrics(registry: Registry): ClusterMetricsClient | undefined {
  if (!cluster.isWorker) return undefined;
  joinClusterMetrics();
  reported = [registry];
  client ??= new ClusterMetricsClient(process as PrimaryChannel);
  return client;
}
