/**
 * What /readyz says about NATS: connected or not, since when, and the last error.
 * Fed by connectNats (failed first attempts) and by the connection's status events.
 * Also logs the connection's troubles (warn) and its recovery (info): once per
 * change, not once per attempt, so a long outage does not flood the log.
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

/** Where the status writes its lines (the gateway's logger). */
export interface NatsStatusLog {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** An error already logged, or a still-disconnected reminder, is logged again at most this often. */
export const NATS_LOG_REPEAT_MS = 30_000;

export class NatsStatus {
  #state: NatsState = "connecting";
  #since: Date;
  #server: string | undefined;
  #lastError: string | undefined;
  readonly #now: () => Date;
  readonly #onChange: (state: NatsState) => void;
  readonly #log: NatsStatusLog | undefined;
  /** Each error logged while not connected, and when (ms): cleared on connecting. */
  readonly #logged = new Map<string, number>();
  #lastWarnAt = 0;
  /** One attempt of its own at the connection's servers: its error, or undefined. */
  #diagnose: (() => Promise<unknown>) | undefined;
  #diagnosedAt = Number.NEGATIVE_INFINITY;

  /**
   * `onChange` hears every change of state (the `turnout_nats_connected` gauge);
   * `log`, when given, gets the lines about losing and regaining the connection.
   */
  constructor(
    now: () => Date = () => new Date(),
    onChange: (state: NatsState) => void = () => {},
    log?: NatsStatusLog,
  ) {
    this.#now = now;
    this.#since = now();
    this.#onChange = onChange;
    this.#log = log;
  }

  isConnected(): boolean {
    return this.#state === "connected";
  }

  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** A failed connect attempt before the first connection, or an error the server sent. */
  failed(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof Error && err.name === "PermissionViolationError") {
      // Not the connection's error: it stays up. The requests it hits end at
      // once (NatsRequester); the permissions need someone to act. Each retry
      // of a refused reply inbox subscribes under a new name: one line for all.
      const refused = message.replace(/_INBOX\.[^."\s]+/g, "_INBOX.<id>");
      if (this.#firstInAWhile(refused)) {
        this.#log?.error(`NATS: ${refused} (the gateway's NATS user lacks the permission)`);
      }
      return;
    }
    this.#lastError = message;
    this.#warnError(message, isRefusal(err));
  }

  /**
   * Follows `nc` from now on; ends by itself when the connection closes.
   * `diagnose` tells why reconnecting fails: nats.js keeps its reconnect
   * attempts' errors (connection refused, a TLS refusal) to itself, so an
   * outage would otherwise be logged and shown on /readyz without a cause.
   */
  attach(nc: NatsConnection, diagnose?: () => Promise<unknown>): void {
    this.#diagnose = diagnose;
    this.#enter("connected", nc.getServer());
    void this.#follow(nc);
    void nc.closed().then((err) => {
      if (err) {
        this.#lastError = err.message;
        this.#log?.error(`NATS: connection closed for good, not reconnecting: ${err.message}`);
      }
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
      else if (s.type === "reconnecting") this.#remindDisconnected();
    }
  }

  #enter(state: NatsState, server: string | undefined): void {
    if (state === this.#state && server === this.#server) return;
    const changed = state !== this.#state;
    const was = { state: this.#state, since: this.#since };
    this.#state = state;
    this.#server = server;
    this.#since = this.#now();
    if (!changed) return;
    this.#logChange(was.state, was.since);
    this.#onChange(state);
  }

  #logChange(was: NatsState, since: Date): void {
    if (this.#state === "connected") {
      this.#logged.clear();
      this.#diagnosedAt = Number.NEGATIVE_INFINITY;
      if (was === "disconnected") {
        const seconds = ((this.#now().getTime() - since.getTime()) / 1000).toFixed(1);
        this.#log?.info(`NATS: reconnected to ${this.#server} after ${seconds} s disconnected`);
      } else {
        this.#log?.info(`NATS: connected to ${this.#server}`);
      }
    } else if (this.#state === "disconnected") {
      this.#warn(`NATS: lost the connection to ${this.#server}; reconnecting`);
    }
  }

  /**
   * Logs `message` unless the same one was logged less than NATS_LOG_REPEAT_MS
   * ago; a refusal of the credentials at error, as it needs someone to act.
   */
  #warnError(message: string, refused = false): void {
    if (!this.#firstInAWhile(message)) return;
    const what =
      this.#state === "connecting"
        ? "connect attempt failed"
        : this.#state === "disconnected"
          ? "reconnect attempt failed"
          : "error";
    if (!refused) {
      this.#warn(`NATS: ${what}: ${message}`);
      return;
    }
    this.#lastWarnAt = this.#now().getTime();
    this.#log?.error(
      `NATS: ${what}: ${message} (the server refuses the credentials; retrying, and secret files are read again on each attempt)`,
    );
  }

  /** False when `message` was logged less than NATS_LOG_REPEAT_MS ago. */
  #firstInAWhile(message: string): boolean {
    const now = this.#now().getTime();
    const last = this.#logged.get(message);
    if (last !== undefined && now - last < NATS_LOG_REPEAT_MS) return false;
    // Bounded: errors carrying ever-new text would be logged, but never hoarded.
    if (this.#logged.size >= 32) this.#logged.clear();
    this.#logged.set(message, now);
    return true;
  }

  /** During a long outage, one line every NATS_LOG_REPEAT_MS says it goes on, and why. */
  #remindDisconnected(): void {
    if (this.#state !== "disconnected") return;
    this.#diagnoseOutage();
    if (this.#now().getTime() - this.#lastWarnAt < NATS_LOG_REPEAT_MS) return;
    this.#warn(`${this.describe()}; still reconnecting`);
  }

  /** At the first reconnect attempt of an outage, then every NATS_LOG_REPEAT_MS. */
  #diagnoseOutage(): void {
    const now = this.#now().getTime();
    if (this.#diagnose === undefined || now - this.#diagnosedAt < NATS_LOG_REPEAT_MS) return;
    this.#diagnosedAt = now;
    void this.#diagnose().then((err) => {
      if (err !== undefined && this.#state === "disconnected") this.failed(err);
    });
  }

  #warn(message: string): void {
    this.#lastWarnAt = this.#now().getTime();
    this.#log?.warn(message);
  }
}

/** The server refused the credentials (wrong, revoked or expired). */
function isRefusal(err: unknown): boolean {
  return (
    err instanceof Error &&
    (err.name === "AuthorizationError" || err.name === "UserAuthenticationExpiredError")
  );
}
