/**
 * What /readyz says about NATS: connected or not, since when, and the last error.
 * Fed by connectNats (failed first attempts) and by the connection's status events.
 */
import type { NatsConnection } from "@nats-io/transport-node";

export type NatsState = "connecting" | "connected" | "disconnected" | "closed";

export interface NatsStatusSnapshot {
  readonly state: NatsState;
  /** When the current state began (ISO 8601). */
  readonly since: string;
  readonly server: string | undefined;
  readonly lastError: string | undefined;
}

export class NatsStatus {
  #state: NatsState = "connecting";
  #since: Date;
  #server: string | undefined;
  #lastError: string | undefined;
  readonly #now: () => Date;
  readonly #onChange: (state: NatsState) => void;

  /** `onChange` hears every change of state (the `turnout_nats_connected` gauge). */
  constructor(now: () => Date = () => new Date(), onChange: (state: NatsState) => void = () => {}) {
    this.#now = now;
    this.#since = now();
    this.#onChange = onChange;
  }

  isConnected(): boolean {
    return this.#state === "connected";
  }

  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** A failed connect attempt before the first connection. */
  failed(err: unknown): void {
    this.#lastError = err instanceof Error ? err.message : String(err);
  }

  /** Follows `nc` from now on; ends by itself when the connection closes. */
  attach(nc: NatsConnection): void {
    this.#enter("connected", nc.getServer());
    void this.#follow(nc);
    void nc.closed().then((err) => {
      if (err) this.failed(err);
      this.#enter("closed", undefined);
    });
  }

  snapshot(): NatsStatusSnapshot {
    return {
      state: this.#state,
      since: this.#since.toISOString(),
      server: this.#server,
      lastError: this.#lastError,
    };
  }

  /** One line for /readyz and the logs, e.g. "NATS disconnected since ... (last error: ...)". */
  describe(): string {
    const since = this.#since.toISOString();
    if (this.#state === "connected") return `NATS connected to ${this.#server} since ${since}`;
    const error = this.#lastError === undefined ? "" : ` (last error: ${this.#lastError})`;
    const what = this.#state === "connecting" ? "not connected yet" : this.#state;
    return `NATS ${what} since ${since}${error}`;
  }

  async #follow(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") this.#enter("disconnected", s.server);
      else if (s.type === "reconnect") this.#enter("connected", s.server);
      else if (s.type === "error") this.failed(s.error);
      else if (s.type === "staleConnection") this.failed("stale connection (no PONG)");
    }
  }

  #enter(state: NatsState, server: string | undefined): void {
    if (state === this.#state && server === this.#server) return;
    const changed = state !== this.#state;
    this.#state = state;
    this.#server = server;
    this.#since = this.#now();
    if (changed) this.#onChange(state);
  }
}
