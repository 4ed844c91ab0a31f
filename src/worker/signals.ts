/**
 * Drain on SIGTERM, the way a worker should leave: take no new requests,
 * answer those in progress, then drain the connection (publishes flushed,
 * subscriptions closed), so a rolling deploy loses nothing.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { Worker } from "./worker.js";

export const DRAIN_SIGNALS: readonly NodeJS.Signals[] = ["SIGTERM", "SIGINT"];

export interface DrainOptions {
  /** Default DRAIN_SIGNALS. */
  readonly signals?: readonly NodeJS.Signals[];
  /** Called when a signal arrives, before the draining starts (for a log line). */
  readonly onSignal?: (signal: NodeJS.Signals) => void;
}

/**
 * On the first of `signals`: stops every worker (each answers what it has in
 * progress), then drains `nc`. Resolves with the signal once done; rejects
 * when stopping or draining fails. The handlers are removed at the first
 * signal, so a second one gets Node's default (exit at once).
 */
export function drainOnSignals(
  nc: NatsConnection,
  workers: readonly Worker[],
  options: DrainOptions = {},
): Promise<NodeJS.Signals> {
  const signals = options.signals ?? DRAIN_SIGNALS;
  return new Promise((resolve, reject) => {
    const handlers = signals.map((signal) => {
      const handler = () => void drain(signal);
      process.once(signal, handler);
      return { signal, handler };
    });
    async function drain(signal: NodeJS.Signals): Promise<void> {
      for (const { signal, handler } of handlers) process.removeListener(signal, handler);
      try {
        options.onSignal?.(signal);
        await Promise.all(workers.map((worker) => worker.stop()));
        if (!nc.isClosed()) await nc.drain();
        resolve(signal);
      } catch (error) {
        reject(error);
      }
    }
  });
}
