/**
 * `/metrics` under `--workers N`: one scrape answers for all N processes.
 *
 * The admin port is shared, so a scrape lands on an arbitrary worker. That
 * worker asks the primary over IPC (`ASK` with a request id); the primary runs
 * prom-client's `AggregatorRegistry.clusterMetrics()`, which asks every worker
 * for its registry as JSON, merges them by each metric's `aggregator` (counters
 * and histograms summed, see metrics.ts for the gauges) and renders the text;
 * the primary sends it back (`ANSWER`). A scrape never hangs: prom-client gives
 * up after 5 s when a worker does not answer, and the asking worker gives up
 * after `CLUSTER_SCRAPE_TIMEOUT_MS` when the primary does not. Either way the
 * scrape fails as a whole (503) rather than answering a partial sum, which
 * Prometheus would read as counter resets.
 *
 * Without node:cluster none of this runs: a single gateway renders its own registry.
 */
import cluster from "node:cluster";
import { AggregatorRegistry, type Registry } from "prom-client";
import { TurnoutError } from "../errors.js";

const ASK = "turnout:cluster-metrics:ask";
const ANSWER = "turnout:cluster-metrics:answer";

/** A worker's wait for the primary's answer (prom-client's own wait for the workers is 5 s). */
export const CLUSTER_SCRAPE_TIMEOUT_MS = 5500;

interface AskMessage {
  type: typeof ASK;
  id: number;
}
type AnswerMessage =
  | { type: typeof ANSWER; id: number; text: string }
  | { type: typeof ANSWER; id: number; error: string };

function isMessage<T extends { type: string }>(message: unknown, type: T["type"]): message is T {
  return (
    typeof message === "object" &&
    message !== null &&
    (message as { type?: unknown }).type === type &&
    typeof (message as { id?: unknown }).id === "number"
  );
}

let aggregator: AggregatorRegistry<"text/plain; version=0.0.4; charset=utf-8"> | undefined;

/** prom-client's IPC listeners (primary: collects answers; worker: answers the primary). */
function aggregatorRegistry(): AggregatorRegistry<"text/plain; version=0.0.4; charset=utf-8"> {
  aggregator ??= new AggregatorRegistry();
  return aggregator;
}

/**
 * Primary, before forking: answers the workers' `ASK`s with the metrics of all
 * workers. Concurrent asks share one collection round. Idempotent.
 */
export function serveClusterMetrics(): void {
  if (!cluster.isPrimary || aggregator !== undefined) return;
  const registry = aggregatorRegistry();
  let round: Promise<string> | undefined;
  const collect = (): Promise<string> => {
    round ??= registry.clusterMetrics().finally(() => {
      round = undefined;
    });
    return round;
  };
  cluster.on("message", (worker, message: unknown) => {
    if (!isMessage<AskMessage>(message, ASK)) return;
    const reply = (answer: AnswerMessage) => {
      if (worker.isConnected()) worker.send(answer);
    };
    collect().then(
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

/**
 * Worker: answer the primary's collection rounds as early as possible (a worker
 * that does not answer fails every scrape for 5 s), reporting nothing until
 * `reportClusterMetrics` names the registry. Idempotent; a no-op outside a worker.
 */
export function joinClusterMetrics(): void {
  if (!cluster.isWorker || aggregator !== undefined) return;
  AggregatorRegistry.setRegistries([]);
  aggregatorRegistry();
}

/**
 * In a cluster worker: reports `registry` to the primary's aggregation and
 * returns the client that scrapes the whole cluster. Outside one: undefined
 * (the caller renders its own registry).
 */
export function reportClusterMetrics(registry: Registry): ClusterMetricsClient | undefined {
  if (!cluster.isWorker) return undefined;
  joinClusterMetrics();
  AggregatorRegistry.setRegistries([registry]);
  client ??= new ClusterMetricsClient(process as PrimaryChannel);
  return client;
}
