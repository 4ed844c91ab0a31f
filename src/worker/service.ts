/**
 * A service instance in the NATS "micro" protocol (ADR-32): it answers
 * `$SRV.PING`, `$SRV.INFO` and `$SRV.STATS`, for all services, for its name and
 * for its own id, so `nats micro ls|info|stats` and any services client find
 * it, list its endpoints and read each one's request counts. Written here rather than taken from
 * @nats-io/services: the registry has only pre-releases of it, built against a
 * pre-release nats-core, and the kit needs no more than these three verbs.
 */
import { type NatsConnection, nuid, type Subscription } from "@nats-io/transport-node";
import { TurnoutError } from "../errors.js";

/** How the service shows up in discovery. */
export interface ServiceIdentity {
  /** Shared by every instance of the service: letters, digits, `-`, `_`. */
  readonly name: string;
  /** Semantic version, e.g. `1.4.0`. */
  readonly version: string;
  readonly description?: string;
  readonly metadata?: Readonly<Record<string, string>>;
}

export interface ServiceEndpoint {
  readonly name: string;
  readonly subject: string;
  readonly queueGroup: string;
}

/** One endpoint's counters, as STATS reports them. */
export class EndpointStats {
  requests = 0;
  errors = 0;
  lastError = "";
  processingMs = 0;

  constructor(readonly endpoint: ServiceEndpoint) {}

  /** Counts one answered request: `error` is `"code:message"` when it was an error reply. */
  record(elapsedMs: number, error?: string): void {
    this.requests++;
    this.processingMs += elapsedMs;
    if (error === undefined) return;
    this.errors++;
    this.lastError = error;
  }
}

const NAME = /^[A-Za-z0-9_-]+$/;
// semver.org's pattern, as the protocol asks.
const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;

const VERBS = ["PING", "INFO", "STATS"] as const;
type Verb = (typeof VERBS)[number];

/** One instance of a service, with its endpoints, in discovery. */
export class ServiceRegistration {
  readonly id = nuid.next();
  /** In the order given: STATS and INFO list them so. */
  readonly endpoints: readonly EndpointStats[];
  readonly #identity: ServiceIdentity;
  readonly #started = new Date().toISOString();
  readonly #subscriptions: Subscription[] = [];

  constructor(
    nc: NatsConnection,
    identity: ServiceIdentity,
    endpoints: readonly ServiceEndpoint[],
  ) {
    checkIdentity(identity, endpoints);
    this.#identity = identity;
    this.endpoints = endpoints.map((endpoint) => new EndpointStats(endpoint));
    const encoder = new TextEncoder();
    for (const verb of VERBS) {
      for (const subject of [
        `$SRV.${verb}`,
        `$SRV.${verb}.${identity.name}`,
        `$SRV.${verb}.${identity.name}.${this.id}`,
      ]) {
        const sub = nc.subscribe(subject, {
          callback: (err, msg) => {
            if (err === null) msg.respond(encoder.encode(JSON.stringify(this.#answer(verb))));
          },
        });
        this.#subscriptions.push(sub);
      }
    }
  }

  stop(): void {
    for (const sub of this.#subscriptions) sub.unsubscribe();
  }

  #answer(verb: Verb): object {
    const { name, version, description = "", metadata = {} } = this.#identity;
    const base = { name, id: this.id, version, metadata };
    if (verb === "PING") return { type: "io.nats.micro.v1.ping_response", ...base };
    if (verb === "INFO") {
      return {
        type: "io.nats.micro.v1.info_response",
        ...base,
        description,
        endpoints: this.endpoints.map((stats) => ({ ...describe(stats.endpoint), metadata: {} })),
      };
    }
    return {
      type: "io.nats.micro.v1.stats_response",
      ...base,
      started: this.#started,
      endpoints: this.endpoints.map(statsOf),
    };
  }
}

function describe(endpoint: ServiceEndpoint) {
  return { name: endpoint.name, subject: endpoint.subject, queue_group: endpoint.queueGroup };
}

function statsOf(stats: EndpointStats): object {
  // Nanoseconds, as the protocol has them.
  const processing = Math.round(stats.processingMs * 1e6);
  return {
    ...describe(stats.endpoint),
    num_requests: stats.requests,
    num_errors: stats.errors,
    last_error: stats.lastError,
    processing_time: processing,
    average_processing_time: stats.requests === 0 ? 0 : Math.round(processing / stats.requests),
  };
}

function checkIdentity(identity: ServiceIdentity, endpoints: readonly ServiceEndpoint[]): void {
  const wrong = (what: string) => new TurnoutError("TURNOUT_ERR_CONFIG", `worker service ${what}`);
  if (!NAME.test(identity.name)) {
    throw wrong(`name ${JSON.stringify(identity.name)} must be letters, digits, "-" or "_"`);
  }
  if (!SEMVER.test(identity.version)) {
    throw wrong(`version ${JSON.stringify(identity.version)} is not a semantic version`);
  }
  if (endpoints.length === 0) throw wrong(`${identity.name} has no endpoint`);
  const seen = new Set<string>();
  for (const { name, subject, queueGroup } of endpoints) {
    if (!NAME.test(name)) {
      throw wrong(`endpoint ${JSON.stringify(name)} must be letters, digits, "-" or "_"`);
    }
    // Checked here, before anything is subscribed: nats.js would throw at the
    // endpoint's subscribe, after the others (and $SRV) were already serving.
    if (!isSubject(subject)) {
      throw wrong(
        `endpoint ${name}: subject ${JSON.stringify(subject)} is not a NATS subject (dot-separated tokens, no spaces or control characters, ">" only as the last token)`,
      );
    }
    // "" is no queue group (each instance gets every request), as nats.js takes it.
    if (queueGroup !== "" && !isPlainToken(queueGroup)) {
      throw wrong(
        `endpoint ${name}: queue group ${JSON.stringify(queueGroup)} holds spaces or control characters`,
      );
    }
    // STATS and INFO tell endpoints apart by name only.
    if (seen.has(name)) throw wrong(`endpoint ${JSON.stringify(name)} is named twice`);
    seen.add(name);
  }
}

/** Wildcards are fine (a worker may subscribe to them), but `>` only ends a subject. */
function isSubject(subject: string): boolean {
  const tokens = subject.split(".");
  return tokens.every(isPlainToken) && !tokens.slice(0, -1).includes(">");
}

/** Non-empty, without spaces or control characters. */
function isPlainToken(token: string): boolean {
  if (token === "") return false;
  for (let i = 0; i < token.length; i++) {
    const code = token.charCodeAt(i);
    if (code <= 0x20 || code === 0x7f || /\s/.test(token[i]!)) return false;
  }
  return true;
}
