/**
 * The gateway's handle on NATS while the connection comes and goes: requests
 * made before the first connection (the gateway listens at once, not ready) are
 * refused with NOT_CONNECTED instead of waiting.
 */
import { type JetStreamClient, jetstream } from "@nats-io/jetstream";
import type { Msg, MsgHdrs, NatsConnection } from "@nats-io/transport-node";
import { TurnoutError } from "../../errors.js";
import { NatsRequester } from "./requester.js";

export interface Requester {
  request(
    subject: string,
    payload: Uint8Array,
    headers: MsgHdrs | undefined,
    timeoutMs: number,
  ): Promise<Msg>;
}

/** Gives a JetStream client for `mode: publish` routes, or throws NOT_CONNECTED. */
export interface JetStreamSource {
  jetstream(): JetStreamClient;
}

export function hasJetStream(requester: Requester): requester is Requester & JetStreamSource {
  return typeof (requester as Partial<JetStreamSource>).jetstream === "function";
}

/** How long a shutdown waits for nats.js to drain the connection before closing it. */
export const NATS_DRAIN_LIMIT_MS = 5000;

/** `promise`, or a rejection once `ms` pass first. */
async function settledWithin(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not done within ${ms} ms`)), ms);
  });
  try {
    await Promise.race([promise, limit]);
  } finally {
    clearTimeout(timer);
  }
}

export class NatsLink implements Requester, JetStreamSource {
  #connection: NatsConnection | undefined;
  #requester: NatsRequester | undefined;
  #jetstream: JetStreamClient | undefined;

  get connection(): NatsConnection | undefined {
    return this.#connection;
  }

  /** Why requests are refused while connected (the reply inbox refused), for /readyz. */
  get problem(): string | undefined {
    return this.#requester?.problem;
  }

  /** Starts using `nc` (once it is connected for the first time). */
  attach(nc: NatsConnection): void {
    this.#connection = nc;
    this.#requester = new NatsRequester(nc);
    this.#jetstream = undefined;
  }

  /**
   * The JetStream client on the current connection; NOT_CONNECTED before the first
   * connection, once closed, and while reconnecting, so a publish is refused at
   * once instead of being buffered until its ack timeout. Whether NATS is
   * connected is the requester's (its disconnect status event), not `nc.info`:
   * nats.js clears that only when it dials again, up to reconnectTimeWait later.
   */
  jetstream(): JetStreamClient {
    const nc = this.#connection;
    const requester = this.#requester;
    if (nc === undefined || requester === undefined) {
      throw new TurnoutError("TURNOUT_ERR_NOT_CONNECTED", "the gateway is not connected to NATS");
    }
    const refused = requester.refusal();
    if (refused !== undefined) throw refused;
    this.#jetstream ??= jetstream(nc);
    return this.#jetstream;
  }

  request(
    subject: string,
    payload: Uint8Array,
    headers: MsgHdrs | undefined,
    timeoutMs: number,
  ): Promise<Msg> {
    if (this.#requester === undefined) {
      return Promise.reject(
        new TurnoutError("TURNOUT_ERR_NOT_CONNECTED", "the gateway has not connected to NATS yet"),
      );
    }
    return this.#requester.request(subject, payload, headers, timeoutMs);
  }

  /**
   * Waits for in-flight requests' replies, then drains and closes the connection;
   * never throws, so a shutdown completes even while NATS is unreachable, and
   * gives the drain NATS_DRAIN_LIMIT_MS: a server that holds the socket open
   * but answers nothing (frozen, or a dead one behind a proxy) left nats.js's
   * drain waiting for its stale-ping check, about 40 s.
   */
  async drain(): Promise<void> {
    const nc = this.#connection;
    if (nc === undefined || nc.isClosed()) return;
    try {
      // The requester first: nc.drain() would unsubscribe the reply inbox under it.
      await this.#requester?.drain();
      await settledWithin(nc.drain(), NATS_DRAIN_LIMIT_MS);
    } catch {
      // Draining needs the server (NATS down at shutdown): nothing to flush, just close.
      await nc.close();
    }
  }
}
