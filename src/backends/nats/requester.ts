/**
 * Request/reply over one wildcard inbox subscription, instead of nc.request():
 * a reply subject `<inbox>.<token>`, a Map from token to the pending request, and
 * one timer for all deadlines (DeadlineQueues). The success path allocates a
 * promise and a small record, and creates no Error (nc.request() makes several,
 * with stack traces). Failures are TurnoutErrors: NO_RESPONDERS as soon as the
 * server says so, TIMEOUT, NOT_CONNECTED.
 */
import {
  createInbox,
  errors,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type Status,
  type Subscription,
} from "@nats-io/transport-node";
import { TurnoutError } from "../../errors.js";
import { type DeadlineEntry, DeadlineQueues } from "./deadlines.js";

class Pending implements DeadlineEntry {
  deadline = 0;
  dlPrev: DeadlineEntry | undefined = undefined;
  dlNext: DeadlineEntry | undefined = undefined;
  dlList: DeadlineEntry["dlList"] = undefined;

  constructor(
    readonly token: string,
    readonly subject: string,
    readonly timeoutMs: number,
    readonly resolve: (msg: Msg) => void,
    readonly reject: (err: TurnoutError) => void,
    /** Set while waiting in the outbox (coalesce mode), cleared once published. */
    public payload: Uint8Array | undefined,
    public headers: MsgHdrs | undefined,
  ) {}
}

export interface NatsRequesterOptions {
  /**
   * Publish in a setImmediate batch (default) instead of at once, so requests that
   * arrive in separate I/O callbacks of one event-loop turn (HTTP requests do) leave
   * in one socket write: nats.js only coalesces publishes made before its flush
   * microtask runs. Measured in bench/nats-requester.ts: 1 write per request
   * without, ~1 per turn with, and about half the CPU per request in the client
   * and in nats-server. The cost is at most one event-loop turn of latency.
   */
  coalesce?: boolean;
  /** How often a refused reply inbox is tried again (default INBOX_RETRY_MS). */
  inboxRetryMs?: number;
}

/** While the server refuses the reply inbox, a new subscription is tried this often. */
export const INBOX_RETRY_MS = 5000;

/**
 * A request the requester let go of (`why`: it closed, its inbox was refused).
 * One still in the outbox never left: NOT_CONNECTED, safe to retry or to serve
 * from legacy. One sent may have reached its worker: coded as the timeout it
 * is from the caller's side, so only an idempotent route retries it or falls
 * back, never a write.
 */
function abandoned(p: Pending, why: string): TurnoutError {
  if (p.payload !== undefined) {
    return new TurnoutError(
      "TURNOUT_ERR_NOT_CONNECTED",
      `request to ${p.subject} not sent: ${why}`,
    );
  }
  return new TurnoutError(
    "TURNOUT_ERR_TIMEOUT",
    `request to ${p.subject} abandoned in flight: ${why} before the reply (the worker may have received it)`,
  );
}

export class NatsRequester {
  readonly #nc: NatsConnection;
  /** `_INBOX.<nuid>.`: unique to this requester's subscription, so no other reply can match. */
  #prefix = "";
  #inbox: Subscription | undefined;
  /** Why the server refused the reply inbox subscription; undefined while it is fine. */
  #inboxRefused: string | undefined;
  #inboxRetry: NodeJS.Timeout | undefined;
  readonly #pending = new Map<string, Pending>();
  readonly #deadlines = new DeadlineQueues<Pending>((p) => this.#expire(p));
  readonly #status: AsyncIterable<Status> & { stop?: () => void };
  readonly #coalesce: boolean;
  readonly #inboxRetryMs: number;
  #outbox: Pending[] = [];
  #seq = 0;
  #connected: boolean;
  #closed = false;
  #draining = false;
  /** Set by drain(): resolves it once nothing is pending. */
  #onIdle: (() => void) | undefined;

  constructor(nc: NatsConnection, opts: NatsRequesterOptions = {}) {
    this.#nc = nc;
    this.#coalesce = opts.coalesce ?? true;
    this.#inboxRetryMs = opts.inboxRetryMs ?? INBOX_RETRY_MS;
    // nats.js clears `info` when it starts dialing again: undefined means not connected now.
    this.#connected = nc.info !== undefined;
    this.#subscribeInbox();
    this.#status = nc.status();
    void this.#followStatus();
    void nc.closed().then(() => this.close());
  }

  /**
   * Why requests are refused although NATS is connected: the server refused
   * the reply inbox subscription (the user's subscribe permissions). For /readyz.
   */
  get problem(): string | undefined {
    return this.#inboxRefused === undefined
      ? undefined
      : `NATS refused the reply inbox subscription: ${this.#inboxRefused}`;
  }

  /** Requests sent and not yet answered, expired or abandoned. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /**
   * Publishes `payload` to `subject` and resolves with the reply. Rejects with a
   * TurnoutError: NO_RESPONDERS (no subscriber, known at once), TIMEOUT after
   * `timeoutMs`, NOT_CONNECTED when it could not be sent.
   */
  request(
    subject: string,
    payload: Uint8Array,
    headers: MsgHdrs | undefined,
    timeoutMs: number,
  ): Promise<Msg> {
    const refused = this.refusal();
    if (refused !== undefined) return Promise.reject(refused);
    const token = (++this.#seq).toString(36);
    if (!this.#coalesce) {
      try {
        this.#nc.publish(subject, payload, { reply: this.#prefix + token, headers });
      } catch (err) {
        return Promise.reject(publishError(err, subject));
      }
    }
    // Registered after the publish: a reply can only arrive in a later turn.
    return new Promise<Msg>((resolve, reject) => {
      const p = this.#coalesce
        ? new Pending(token, subject, timeoutMs, resolve, reject, payload, headers)
        : new Pending(token, subject, timeoutMs, resolve, reject, undefined, undefined);
      this.#pending.set(token, p);
      this.#deadlines.add(p, timeoutMs);
      if (this.#coalesce && this.#outbox.push(p) === 1) setImmediate(this.#flushOutbox);
    });
  }

  readonly #flushOutbox = (): void => {
    const batch = this.#outbox;
    this.#outbox = [];
    for (const p of batch) {
      const { payload, headers } = p;
      p.payload = p.headers = undefined;
      // Expired or abandoned while waiting: nothing to send.
      if (payload === undefined || this.#pending.get(p.token) !== p) continue;
      try {
        this.#nc.publish(p.subject, payload, { reply: this.#prefix + p.token, headers });
      } catch (err) {
        this.#deadlines.remove(p);
        this.#forget(p);
        p.reject(publishError(err, p.subject));
      }
    }
  };

  /**
   * Refuses new requests (DRAINING) and resolves once every pending one has its
   * reply or timed out. Call it before nc.drain(), which drops the inbox
   * subscription and with it the replies still to come.
   */
  drain(): Promise<void> {
    this.#draining = true;
    if (this.#pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#onIdle = resolve;
    });
  }

  /**
   * Rejects every pending request with NOT_CONNECTED and refuses new ones. A
   * pending request may have reached a worker: its message says so.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#deadlines.clear();
    this.#status.stop?.();
    clearTimeout(this.#inboxRetry);
    this.#abandonAll("the NATS requester closed");
  }

  #abandonAll(why: string): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) this.#deadlines.remove(p);
    this.#onIdle?.();
    for (const p of pending) p.reject(abandoned(p, why));
  }

  /** A callback subscription: no async iterator between the socket and the Map. */
  #subscribeInbox(): Subscription {
    this.#prefix = `${createInbox()}.`;
    const inbox = this.#nc.subscribe(`${this.#prefix}*`, {
      callback: (err, msg) => {
        if (err === null) this.#onReply(msg);
        else if (this.#inbox === inbox) this.#inboxLost(err);
      },
    });
    this.#inbox = inbox;
    return inbox;
  }

  /**
   * The server refused or closed the reply inbox (a permissions violation):
   * no reply can arrive, so waiting out each deadline would only turn every
   * request into a 504. Ends the pending ones now, refuses new ones, and
   * subscribes anew on the next reconnect or inboxRetryMs later.
   */
  #inboxLost(err: Error): void {
    if (this.#closed) return;
    this.#inbox = undefined;
    this.#inboxRefused = err.message;
    this.#abandonAll(`the NATS server refused the reply inbox (${err.message})`);
    this.#retryInbox(this.#inboxRetryMs);
  }

  #retryInbox(delay: number): void {
    clearTimeout(this.#inboxRetry);
    this.#inboxRetry = setTimeout(() => {
      if (this.#closed) return;
      this.#confirmInbox(this.#inbox ?? this.#subscribeInbox());
    }, delay);
    this.#inboxRetry.unref();
  }

  /**
   * Takes requests again once the server has taken `inbox`: it answers a
   * flush after it has refused the subscription, if it does, so requests are
   * not sent meanwhile only to be abandoned.
   */
  #confirmInbox(inbox: Subscription): void {
    this.#nc.flush().then(
      () => {
        if (this.#inbox === inbox) this.#inboxRefused = undefined;
      },
      () => {
        // Disconnected: the reconnect tries again.
      },
    );
  }

  readonly #onReply = (msg: Msg): void => {
    const token = msg.subject.slice(this.#prefix.length);
    const p = this.#pending.get(token);
    if (p === undefined) return; // a late reply to an expired request
    this.#deadlines.remove(p);
    this.#forget(p);
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      p.reject(new TurnoutError("TURNOUT_ERR_NO_RESPONDERS", `no worker listens on ${p.subject}`));
    } else {
      p.resolve(msg);
    }
  };

  #forget(p: Pending): void {
    this.#pending.delete(p.token);
    if (this.#onIdle !== undefined && this.#pending.size === 0) this.#onIdle();
  }

  #expire(p: Pending): void {
    this.#forget(p);
    p.reject(
      new TurnoutError("TURNOUT_ERR_TIMEOUT", `no reply from ${p.subject} within ${p.timeoutMs}ms`),
    );
  }

  /**
   * While disconnected, nats.js would buffer the publish and send it after a
   * reconnect, maybe after its deadline: refusing at once lets the caller retry
   * or fall back, as the request provably reached no worker. Requests already in
   * flight are kept: their replies may still come after the reconnect. Public:
   * JetStream publishes on the same connection ask it too (NatsLink.jetstream()).
   */
  refusal(): TurnoutError | undefined {
    if (this.#closed || this.#nc.isClosed()) return notConnected("the connection is closed");
    if (this.#draining || this.#nc.isDraining()) {
      return new TurnoutError("TURNOUT_ERR_DRAINING", "NATS requests are draining: shutting down");
    }
    if (!this.#connected) return notConnected("disconnected, reconnecting");
    const problem = this.problem;
    if (problem !== undefined) return new TurnoutError("TURNOUT_ERR_NOT_CONNECTED", problem);
    return undefined;
  }

  async #followStatus(): Promise<void> {
    for await (const s of this.#status) {
      if (s.type === "disconnect") this.#connected = false;
      else if (s.type === "reconnect") {
        this.#connected = true;
        // The server may grant the inbox now (a reload of its permissions).
        if (this.#inboxRefused !== undefined) this.#retryInbox(0);
      } else if (s.type === "error") this.#refusedPublish(s.error);
    }
  }

  /**
   * The server refused a publish (the user's publish permissions): it says so
   * at once, and no reply will come. Every request sent to that subject and
   * still pending ends now, not at its deadline; none reached a worker.
   */
  #refusedPublish(err: Error): void {
    if (!(err instanceof errors.PermissionViolationError) || err.operation !== "publish") return;
    for (const p of [...this.#pending.values()]) {
      if (p.subject !== err.subject || p.payload !== undefined) continue;
      this.#deadlines.remove(p);
      this.#forget(p);
      p.reject(
        new TurnoutError(
          "TURNOUT_ERR_NOT_CONNECTED",
          `the NATS server refused the publish to ${p.subject}: ${err.message}`,
        ),
      );
    }
  }
}

function notConnected(why: string): TurnoutError {
  return new TurnoutError("TURNOUT_ERR_NOT_CONNECTED", `NATS is not connected: ${why}`);
}

function publishError(err: unknown, subject: string): TurnoutError {
  if (
    err instanceof errors.ClosedConnectionError ||
    err instanceof errors.DrainingConnectionError
  ) {
    return new TurnoutError("TURNOUT_ERR_NOT_CONNECTED", `cannot publish to ${subject}`, {
      cause: err,
    });
  }
  const tooLarge = tooLargeForServer(err, subject);
  if (tooLarge !== undefined) return tooLarge;
  // An invalid subject: nothing was sent.
  return new TurnoutError("TURNOUT_ERR_INTERNAL", `cannot publish to ${subject}: ${String(err)}`, {
    cause: err,
  });
}

/**
 * BODY_TOO_LARGE when `err` is nats.js refusing a message over the server's
 * max_payload (nothing was sent). That is the client's doing: a 413, which
 * does not count against the breaker (a 5xx would open it for everyone).
 */
export function tooLargeForServer(err: unknown, subject: string): TurnoutError | undefined {
  if (!(err instanceof errors.InvalidArgumentError) || !/max_payload/.test(err.message)) {
    return undefined;
  }
  return new TurnoutError(
    "TURNOUT_ERR_BODY_TOO_LARGE",
    `the request is larger than the NATS server's max_payload (${subject})`,
    { cause: err },
  );
}
