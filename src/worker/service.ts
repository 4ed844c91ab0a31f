/**
 * A worker as a NATS service (the NATS "micro" protocol, ADR-32): it answers
 * `$SRV.PING`, `$SRV.INFO` and `$SRV.STATS`, for all services, for its name and
 * for its own id, so `nats micro ls|info|stats` and any services client find
 * it and read its request counts. Written here rather than taken from
 * @nats-io/services: the registry has only pre-releases of it, built against a
 * pre-release nats-core, and the kit needs no more than these three verbs.
 */
import { type NatsConnection, nuid, type Subscription } from "@nats-io/transport-node";
import { TurnoutError } from "../errors.js";

/** How the worker shows up in discovery. */
export interface ServiceIdentity {
  /** Shared by every instance of the service: letters, digits, `-`, `_`. */
  readonly name: string;
  /** Semantic version, e.g. `1.4.0`. */
  readonly version: string;
  readonly description?: string;
  readonly metadata?: Readonly<Record<string, string>>;
  /** The endpoint's name (default: the request type's message name). */
  readonly endpoint?: string;
}

export interface ServiceEndpoint {
  readonly name: string;
  readonly subject: string;
  readonly queueGroup: string;
}

const NAME = /^[A-Za-z0-9_-]+$/;
// semver.org's pattern, as the protocol asks.
const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;

const VERBS = ["PING", "INFO", "STATS"] as const;
type Verb = (typeof VERBS)[number];

export class ServiceRegistration {
  readonly id = nuid.next();
  readonly #identity: ServiceIdentity;
  readonly #endpoint: ServiceEndpoint;
  readonly #started = new Date().toISOString();
  readonly #subscriptions: Subscription[] = [];
  #requests = 0;
  #errors = 0;
  #lastError = "";
  #processingMs = 0;

  constructor(nc: NatsConnection, identity: ServiceIdentity, endpoint: ServiceEndpoint) {
    checkIdentity(identity, endpoint);
    this.#identity = identity;
    this.#endpoint = endpoint;
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

  /** Counts one answered request: `error` is `"code:message"` when it was an error reply. */
  record(elapsedMs: number, error?: string): void {
    this.#requests++;
    this.#processingMs += elapsedMs;
    if (error === undefined) return;
    this.#errors++;
    this.#lastError = error;
  }

  stop(): void {
    for (const sub of this.#subscriptions) sub.unsubscribe();
  }

  #answer(verb: Verb): object {
    const { name, version, description = "", metadata = {} } = this.#identity;
    const base = { name, id: this.id, version, metadata };
    const endpoint = {
      name: this.#endpoint.name,
      subject: this.#endpoint.subject,
      queue_group: this.#endpoint.queueGroup,
    };
    if (verb === "PING") return { type: "io.nats.micro.v1.ping_response", ...base };
    if (verb === "INFO") {
      return {
        type: "io.nats.micro.v1.info_response",
        ...base,
        description,
        endpoints: [{ ...endpoint, metadata: {} }],
      };
    }
    const processing = Math.round(this.#processingMs * 1e6);
    return {
      type: "io.nats.micro.v1.stats_response",
      ...base,
      started: this.#started,
      endpoints: [
        {
          ...endpoint,
          num_requests: this.#requests,
          num_errors: this.#errors,
          last_error: this.#lastError,
          // Nanoseconds, as the protocol has them.
          processing_time: processing,
          average_processing_time:
            this.#requests === 0 ? 0 : Math.round(processing / this.#requests),
        },
      ],
    };
  }
}

function checkIdentity(identity: ServiceIdentity, endpoint: ServiceEndpoint): void {
  const wrong = (what: string) => new TurnoutError("TURNOUT_ERR_CONFIG", `worker service ${what}`);
  if (!NAME.test(identity.name)) {
    throw wrong(`name ${JSON.stringify(identity.name)} must be letters, digits, "-" or "_"`);
  }
  if (!SEMVER.test(identity.version)) {
    throw wrong(`version ${JSON.stringify(identity.version)} is not a semantic version`);
  }
  if (!NAME.test(endpoint.name)) {
    throw wrong(`endpoint ${JSON.stringify(endpoint.name)} must be letters, digits, "-" or "_"`);
  }
}
