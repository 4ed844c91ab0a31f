/**
 * Connects the gateway to NATS. Connecting never blocks the start: the gateway
 * listens at once and reports not-ready (see NatsStatus) until the first connect
 * succeeds; after that nats.js reconnects forever, with jitter so that a fleet of
 * replicas does not stampede a restarted server.
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
import { TurnoutError } from "../../errors.js";
import { resolveSecret } from "./secrets.js";
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
 * TURNOUT_ERR_CONFIG naming the missing variable or file, so a caller can fail
 * the start on it before it starts connecting in the background.
 */
export function natsConnectOptions(
  config: NatsConfig,
  opts: ConnectNatsOptions = {},
): NodeConnectionOptions {
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
    ...tlsOptions(config.tls),
    ...authOptions(config.auth),
  };
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
  const options = natsConnectOptions(config, opts);
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
function tlsOptions(tls: NatsConfig["tls"]): Pick<NodeConnectionOptions, "tls"> {
  if (tls === undefined) return {};
  return {
    tls: {
      caFile: readable(tls.ca, "nats.tls.ca"),
      certFile: readable(tls.cert, "nats.tls.cert"),
      keyFile: readable(tls.key, "nats.tls.key"),
    },
  };
}

function readable(file: string | undefined, key: string): string | undefined {
  if (file === undefined) return undefined;
  try {
    accessSync(file, constants.R_OK);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new TurnoutError("TURNOUT_ERR_CONFIG", `${key}: cannot read ${file} (${reason})`);
  }
  return file;
}

function authOptions(auth: NatsAuth | undefined): NodeConnectionOptions {
  if (auth === undefined) return {};
  const out: NodeConnectionOptions = {};
  if (auth.token !== undefined) out.token = resolveSecret(auth.token, "nats.auth.token");
  if (auth.user !== undefined) out.user = auth.user;
  if (auth.pass !== undefined) out.pass = resolveSecret(auth.pass, "nats.auth.pass");
  const authenticators: Authenticator[] = [];
  if (auth.nkeySeed !== undefined) {
    const seed = resolveSecret(auth.nkeySeed, "nats.auth.nkeySeed");
    authenticators.push(nkeyAuthenticator(new TextEncoder().encode(seed)));
  }
  if (auth.credsFile !== undefined) {
    authenticators.push(credsAuthenticator(readCreds(auth.credsFile)));
  }
  if (authenticators.length > 0) out.authenticator = authenticators;
  return out;
}

function readCreds(file: string): Uint8Array {
  try {
    return readFileSync(file);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new TurnoutError(
      "TURNOUT_ERR_CONFIG",
      `nats.auth.credsFile: cannot read ${file} (${reason})`,
    );
  }
}

/**
 * True for the error nats.js raises when the server runs without JetStream,
 * and also for a JetStream publish that no stream takes (its 503).
 */
export function isJetStreamMissing(error: unknown): boolean {
  return error instanceof Error && error.name === "JetStreamNotEnabled";
}
