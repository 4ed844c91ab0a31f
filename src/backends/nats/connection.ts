/**
 * Connects the gateway to NATS. Connecting never blocks the start: the gateway
 * listens at once and reports not-ready (see NatsStatus) until the first connect
 * succeeds; after that nats.js reconnects forever, with jitter so that a fleet of
 * replicas does not stampede a restarted server. What cannot fix itself by
 * waiting (a secret or file named in `nats:` that cannot be read) is checked
 * before listening instead: see natsSettingProblems.
 */
import { accessSync, constants, readFileSync } from "node:fs";
import {
  type Authenticator,
  connect,
  credsAuthenticator,
  errors,
  type NatsConnection,
  type NodeConnectionOptions,
  nkeyAuthenticator,
} from "@nats-io/transport-node";
import type { NatsAuth, NatsConfig } from "../../config/types.js";
import type { ConfigProblem } from "../../errors.js";
import { NatsSettingError, reason, resolveSecret } from "./secrets.js";
import type { NatsStatus } from "./status.js";

export interface ConnectNatsOptions {
  /** Client name shown by the server's monitoring; defaults to the config's name. */
  name?: string;
  /** Records connect failures, disconnects and reconnects for /readyz. */
  status?: NatsStatus;
  /** Stops the first-connect loop (SIGTERM before NATS was ever reached). */
  signal?: AbortSignal;
  /** Base wait between connect attempts in ms (tests shorten it). */
  reconnectTimeWaitMs?: number;
}

const RECONNECT_TIME_WAIT_MS = 1000;
const RECONNECT_JITTER_MS = 500;
const RECONNECT_JITTER_TLS_MS = 1000;

/**
 * The nats.js options for `config`, secrets resolved. Synchronous and throwing a
 * NatsSettingError (TURNOUT_ERR_CONFIG) naming the first missing variable or
 * file, so a caller can fail the start on it before it starts connecting in the
 * background.
 */
export function natsConnectOptions(
  config: NatsConfig,
  opts: ConnectNatsOptions = {},
): NodeConnectionOptions {
  const resolver = new Resolver();
  const options = baseOptions(config, opts);
  Object.assign(options, tlsOptions(config.tls, resolver), authOptions(config.auth, resolver));
  const [first] = resolver.failures;
  if (first !== undefined) throw first;
  return options;
}

/**
 * Every secret and file `config` names that cannot be used now, as problems at
 * `location` (the routes.yaml): `serve` lists them all and stops before it
 * listens, as for any other problem of the file. Waiting would not fix them,
 * and a gateway left up without NATS would only say "not connected yet".
 */
export function natsSettingProblems(config: NatsConfig, location: string): ConfigProblem[] {
  const resolver = new Resolver();
  tlsOptions(config.tls, resolver);
  authOptions(config.auth, resolver);
  return resolver.failures.map((error) => ({ location, key: error.key, message: error.detail }));
}

function baseOptions(config: NatsConfig, opts: ConnectNatsOptions): NodeConnectionOptions {
  const wait = opts.reconnectTimeWaitMs ?? RECONNECT_TIME_WAIT_MS;
  return {
    servers: [...config.servers],
    name: opts.name ?? config.name,
    // Async traces put a stack-trace Error on every request: a large share of CPU.
    noAsyncTraces: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: wait,
    reconnectJitter: Math.min(RECONNECT_JITTER_MS, wait),
    reconnectJitterTLS: Math.min(RECONNECT_JITTER_TLS_MS, wait * 2),
    // The 2-minute default would leave a silently dead server unnoticed for minutes.
    pingInterval: 10_000,
    maxPingOut: 3,
    timeout: 5000,
  };
}

/** Resolves each setting on its own, keeping every failure, so all are reported at once. */
class Resolver {
  readonly failures: NatsSettingError[] = [];

  get<T>(resolve: () => T): T | undefined {
    try {
      return resolve();
    } catch (error) {
      if (!(error instanceof NatsSettingError)) throw error;
      this.failures.push(error);
      return undefined;
    }
  }
}

/**
 * Connects, retrying the first connection forever (with the reconnect wait and
 * jitter) until it succeeds, `signal` aborts, the server refuses the credentials,
 * or a secret is missing. Do not await it before listening: the gateway serves
 * (not-ready) meanwhile.
 */
export async function connectNats(
  config: NatsConfig,
  opts: ConnectNatsOptions = {},
): Promise<NatsConnection> {
  let options: NodeConnectionOptions;
  try {
    options = natsConnectOptions(config, opts);
  } catch (err) {
    // Recorded like a refused connect, so /readyz says why rather than "not connected yet".
    opts.status?.failed(err);
    throw err;
  }
  const wait = options.reconnectTimeWait ?? RECONNECT_TIME_WAIT_MS;
  for (;;) {
    opts.signal?.throwIfAborted();
    try {
      const nc = await connect(options);
      if (opts.signal?.aborted) {
        await nc.close();
        opts.signal.throwIfAborted();
      }
      opts.status?.attach(nc);
      return nc;
    } catch (err) {
      opts.status?.failed(err);
      if (isFatal(err)) throw err;
    }
    await sleep(wait + Math.random() * (options.reconnectJitter ?? 0), opts.signal);
  }
}

/** Refused credentials do not fix themselves; retrying would only hide the cause. */
function isFatal(err: unknown): boolean {
  return (
    err instanceof errors.AuthorizationError ||
    err instanceof errors.UserAuthenticationExpiredError ||
    (err instanceof Error && err.name === "AbortError")
  );
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** File paths, checked now; nats.js re-reads them on each reconnect (rotation works). */
function tlsOptions(
  tls: NatsConfig["tls"],
  resolver: Resolver,
): Pick<NodeConnectionOptions, "tls"> {
  if (tls === undefined) return {};
  return {
    tls: {
      caFile: resolver.get(() => readable(tls.ca, "nats.tls.ca")),
      certFile: resolver.get(() => readable(tls.cert, "nats.tls.cert")),
      keyFile: resolver.get(() => readable(tls.key, "nats.tls.key")),
    },
  };
}

function readable(file: string | undefined, key: string): string | undefined {
  if (file === undefined) return undefined;
  try {
    accessSync(file, constants.R_OK);
  } catch (err) {
    throw new NatsSettingError(key, `cannot read ${file} (${reason(err)})`, err);
  }
  return file;
}

function authOptions(auth: NatsAuth | undefined, resolver: Resolver): NodeConnectionOptions {
  if (auth === undefined) return {};
  const secret = (ref: NatsAuth["token"], key: string) =>
    ref === undefined ? undefined : resolver.get(() => resolveSecret(ref, key));
  const out: NodeConnectionOptions = {};
  const token = secret(auth.token, "nats.auth.token");
  if (token !== undefined) out.token = token;
  if (auth.user !== undefined) out.user = auth.user;
  const pass = secret(auth.pass, "nats.auth.pass");
  if (pass !== undefined) out.pass = pass;
  const authenticators: Authenticator[] = [];
  const seed = secret(auth.nkeySeed, "nats.auth.nkeySeed");
  if (seed !== undefined) authenticators.push(nkeyAuthenticator(new TextEncoder().encode(seed)));
  const creds = auth.credsFile;
  const jwt = creds === undefined ? undefined : resolver.get(() => readCreds(creds));
  if (jwt !== undefined) authenticators.push(credsAuthenticator(jwt));
  if (authenticators.length > 0) out.authenticator = authenticators;
  return out;
}

function readCreds(file: string): Uint8Array {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new NatsSettingError("nats.auth.credsFile", `cannot read ${file} (${reason(err)})`, err);
  }
}

/**
 * True for the error nats.js raises when the server runs without JetStream,
 * and also for a JetStream publish that no stream takes (its 503).
 */
export function isJetStreamMissing(error: unknown): boolean {
  return error instanceof Error && error.name === "JetStreamNotEnabled";
}
