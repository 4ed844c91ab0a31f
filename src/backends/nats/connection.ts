/**
 * Connects the gateway to NATS. Connecting never blocks the start: the gateway
 * listens at once and reports not-ready (see NatsStatus) until the first connect
 * succeeds; after that nats.js reconnects forever (refused credentials too: a
 * server restarted mid-rotation takes them again later), with jitter so that a
 * fleet of replicas does not stampede a restarted server.
 *
 * A `tls://` server address requires TLS, also without a `nats.tls` block (then
 * the server's certificate is checked against the system CAs): a server that
 * does not offer TLS is refused before the credentials are sent. `nats.tls`
 * makes every listed server require TLS, whatever its scheme.
 *
 * What cannot fix itself by waiting (a secret or file named in `nats:` that
 * cannot be read or used: a directory, a file that is not PEM, a key that is not
 * the certificate's, a .creds file or nkey seed that does not parse) is checked
 * before listening instead: see natsSettingProblems. The files are read again on
 * each reconnect, so rotated certificates, passwords, tokens, seeds and .creds
 * files are picked up without a restart.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { createSecureContext } from "node:tls";
import {
  type Authenticator,
  connect,
  credsAuthenticator,
  type NatsConnection,
  type NodeConnectionOptions,
  nkeyAuthenticator,
  nkeys,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
} from "@nats-io/transport-node";
import type { NatsAuth, NatsConfig, SecretRef } from "../../config/types.js";
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
  Object.assign(options, tlsOptions(config, resolver), authOptions(config.auth, resolver));
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
  tlsOptions(config, resolver);
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
    // Else nats.js stops reconnecting for good after two refusals of the credentials
    // in a row (a server restarted mid-rotation), and the gateway is never ready again.
    ignoreAuthErrorAbort: true,
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
 * jitter) until it succeeds, `signal` aborts, or a secret is missing. Refused
 * credentials are retried too, as on a reconnect: secret files are read again
 * on each attempt, so a gateway started before its credentials were issued or
 * accepted connects once they are, without a restart (NatsStatus logs each
 * refusal at error). Do not await it before listening: the gateway serves
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
      keepListedServers(nc, config.servers);
      opts.status?.attach(nc, () => attemptError(options));
      return nc;
    } catch (err) {
      if (err instanceof Error && err.name === "AbortError") {
        opts.status?.failed(err);
        throw err;
      }
      opts.status?.failed(await explainedTimeout(err, options));
    }
    await sleep(wait + Math.random() * (options.reconnectJitter ?? 0), opts.signal);
  }
}

/**
 * nats.js drops from its pool every server that failed before its first
 * connect succeeded: a replica started while a listed server was down (a
 * rolling restart) would never fail over to it, and a cluster that does not
 * advertise its servers never names it again. Puts the listed ones back,
 * keeping those the cluster advertised.
 */
function keepListedServers(nc: NatsConnection, listed: readonly string[]): void {
  const pool = nc.getServers();
  const inPool = new Set(pool.map((server) => server.listen.toLowerCase()));
  // Only then: setServers marks every server it keeps as listed, and nats.js
  // no longer drops an advertised one that leaves the cluster.
  if (listed.every((url) => inPool.has(listenOf(url)))) return;
  const advertised = pool.filter((server) => server.gossiped).map((server) => server.listen);
  nc.setServers([...listed, ...advertised]);
}

/** `host:port` as nats.js lists a server URL (port 4222 when it names none). */
function listenOf(url: string): string {
  try {
    const { host, port } = new URL(url.trim());
    return (port === "" ? `${host}:4222` : host).toLowerCase();
  } catch {
    return url;
  }
}

/** One connect attempt without reconnecting, closed at once when it succeeds. */
async function probe(options: NodeConnectionOptions): Promise<void> {
  await (await connect({ ...options, reconnect: false, timeout: PROBE_TIMEOUT_MS })).close();
}

/** A probe's error (explained as below), or undefined when it connects. */
async function attemptError(options: NodeConnectionOptions): Promise<unknown> {
  try {
    await probe(options);
    return undefined;
  } catch (err) {
    return explainedTimeout(err, options);
  }
}

/**
 * A TLS connect that nats.js reports as a timeout may be a handshake the
 * server refused (no client certificate, a wrong one): with reconnecting on,
 * nats.js waits out its timeout and says only that. One attempt without
 * reconnecting gets the server's alert, which the log and /readyz then name.
 */
async function explainedTimeout(err: unknown, options: NodeConnectionOptions): Promise<unknown> {
  if (!isTimeout(err) || options.tls === undefined) return err;
  let reset: unknown;
  // Under TLS 1.3 the server's alert and its reset race: a second try mostly gets the alert.
  for (let attempt = 0; attempt < PROBE_ATTEMPTS; attempt++) {
    try {
      await probe(options);
      return err;
    } catch (failure) {
      if (isTimeout(failure)) return err;
      if (!(failure instanceof Error) || !/ECONNRESET/.test(failure.message)) return failure;
      reset = failure;
    }
  }
  const message = reset instanceof Error ? reset.message : String(reset);
  return new Error(
    `the server reset the TLS connection after the handshake (${message}): does it require a client certificate that is missing or refused?`,
  );
}

function isTimeout(err: unknown): boolean {
  return err instanceof Error && /timeout/i.test(err.message);
}

/** The diagnostic attempt's limit: a handshake refusal comes in milliseconds. */
const PROBE_TIMEOUT_MS = 2000;
const PROBE_ATTEMPTS = 3;

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

/**
 * The TLS options. nats.js ignores a server URL's scheme on Node: only a `tls`
 * object makes it require TLS (and refuse a server that does not offer it,
 * before the CONNECT carrying the credentials is sent). So a `tls://` address
 * without a `nats.tls` block means TLS with the system CAs, as it says.
 * The files are read and parsed now, so a bad one fails the start, and again
 * on each dial (nats.js reads `ca`, `cert` and `key` from the object each
 * time), so rotated ones are used; one that cannot be read or used then gives
 * its last good value. Handing nats.js the paths instead made a file missing
 * mid-rotation fail every reconnect, with nats.js saying nothing of why.
 */
function tlsOptions(config: NatsConfig, resolver: Resolver): Pick<NodeConnectionOptions, "tls"> {
  const { tls } = config;
  if (tls === undefined) return config.servers.some(isTlsUrl) ? { tls: {} } : {};
  const readCa = () => readPem(tls.ca, "nats.tls.ca", checkCa);
  const readCert = () => readPem(tls.cert, "nats.tls.cert", checkCert);
  const readKey = () => readPem(tls.key, "nats.tls.key", checkKey);
  const ca = resolver.get(readCa);
  const cert = resolver.get(readCert);
  const key = resolver.get(readKey);
  if (cert !== undefined && key !== undefined) {
    resolver.get(() => checkPair(cert, tls.cert ?? "", key, tls.key ?? ""));
  }
  const readPair = () => {
    const pair = { cert: readCert(), key: readKey() };
    if (pair.cert !== undefined && pair.key !== undefined) {
      checkPair(pair.cert, tls.cert ?? "", pair.key, tls.key ?? "");
    }
    return pair;
  };
  const currentCa = latest(ca, readCa);
  // The cert and key of one read: a pair half rotated is not sent.
  const currentPair = latest({ cert, key }, readPair);
  let dialPair = currentPair();
  return {
    tls: {
      handshakeFirst: tls.handshakeFirst === true,
      get ca() {
        return currentCa()?.toString();
      },
      get cert() {
        dialPair = currentPair(); // nats.js reads cert, then key, on each dial
        return dialPair.cert?.toString();
      },
      get key() {
        return dialPair.key?.toString();
      },
    },
  };
}

/** True for a `tls://` server address, which must never be dialled in clear text. */
function isTlsUrl(url: string): boolean {
  return url.trim().toLowerCase().startsWith("tls://");
}

/** The file's content once `check` accepts it, or undefined when `file` is. */
function readPem(
  file: string | undefined,
  key: string,
  check: (pem: Buffer, file: string) => void,
): Buffer | undefined {
  if (file === undefined) return undefined;
  const pem = readSettingFile(file, key);
  try {
    check(pem, file);
  } catch (err) {
    throw new NatsSettingError(key, err instanceof Error ? err.message : String(err), err);
  }
  return pem;
}

function readSettingFile(file: string, key: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new NatsSettingError(key, `cannot read ${file} (${reason(err)})`, err);
  }
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;
const PEM_PRIVATE_KEY = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;

/** A CA bundle: one or more PEM certificates (Node would silently trust none of a garbage file). */
function checkCa(pem: Buffer, file: string): void {
  const text = pem.toString("latin1");
  const blocks = text.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) {
    const hint = PEM_PRIVATE_KEY.test(text) ? " (it holds a private key)" : "";
    throw new Error(`${file} holds no PEM certificate${hint}`);
  }
  for (const block of blocks) parsed(() => new X509Certificate(block), file, "PEM certificate");
}

function checkCert(pem: Buffer, file: string): void {
  const swapped = PEM_PRIVATE_KEY.test(pem.toString("latin1"));
  const hint = swapped ? "; it holds a private key: are cert and key swapped?" : "";
  parsed(() => new X509Certificate(pem), file, "PEM certificate", hint);
}

function checkKey(pem: Buffer, file: string): void {
  const swapped = pem.toString("latin1").includes("-----BEGIN CERTIFICATE-----");
  const hint = swapped ? "; it holds a certificate: are cert and key swapped?" : "";
  parsed(() => createPrivateKey(pem), file, "PEM private key", hint);
}

/** The certificate and key make a TLS context only when the key is the certificate's. */
function checkPair(cert: Buffer, certFile: string, key: Buffer, keyFile: string): void {
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new NatsSettingError(
      "nats.tls.key",
      `${keyFile} is not the private key of the certificate in ${certFile} (${message(err)})`,
      err,
    );
  }
}

function parsed(parse: () => unknown, file: string, what: string, hint = ""): void {
  try {
    parse();
  } catch (err) {
    throw new Error(`${file} is not a usable ${what} (${message(err)})${hint}`, { cause: err });
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The authenticators, each secret resolved and checked now. Secrets from files
 * (password, token, nkey seed, .creds) are read again on each (re)connect, so
 * a renewed one on disk is used without a restart; a file that cannot be read
 * or used at that moment keeps the last good value (an authenticator that
 * throws would make nats.js close the connection for good).
 */
function authOptions(auth: NatsAuth | undefined, resolver: Resolver): NodeConnectionOptions {
  if (auth === undefined) return {};
  const authenticators: Authenticator[] = [];
  const token = secret(auth.token, "nats.auth.token", resolver, (value) => value);
  if (token !== undefined) authenticators.push(tokenAuthenticator(token));
  const pass = secret(auth.pass, "nats.auth.pass", resolver, (value) => value);
  if (auth.user !== undefined) authenticators.push(usernamePasswordAuthenticator(auth.user, pass));
  const seed = secret(auth.nkeySeed, "nats.auth.nkeySeed", resolver, nkeySeed);
  if (seed !== undefined) authenticators.push(nkeyAuthenticator(seed));
  const file = auth.credsFile;
  const creds = file === undefined ? undefined : resolver.get(() => readCreds(file));
  if (file !== undefined && creds !== undefined) {
    const current = latest(creds, () => readCreds(file));
    // One read per connect: the JWT and the seed always come from the same file version.
    authenticators.push((nonce?: string) => credsAuthenticator(current())(nonce));
  }
  return authenticators.length > 0 ? { authenticator: authenticators } : {};
}

/**
 * The secret `ref` names, as `use` makes it (throwing a NatsSettingError for a
 * value it cannot use): a constant for an environment variable, a function
 * reading the file again for a file.
 */
function secret<T>(
  ref: SecretRef | undefined,
  key: string,
  resolver: Resolver,
  use: (value: string, ref: SecretRef, key: string) => T,
): T | (() => T) | undefined {
  if (ref === undefined) return undefined;
  const read = () => {
    const value = resolveSecret(ref, key);
    return use(value, ref, key);
  };
  const first = resolver.get(read);
  if (first === undefined || !("file" in ref)) return first;
  return latest(first, read);
}

/** `read()` now, or the last value it gave when it throws. */
function latest<T>(first: T, read: () => T): () => T {
  let last = first;
  return () => {
    try {
      last = read();
    } catch {
      // Keep the last good value; the server says whether it still works.
    }
    return last;
  };
}

/** The seed's bytes, checked: a value that is no nkey seed fails now, not as an auth error later. */
function nkeySeed(value: string, ref: SecretRef, key: string): Uint8Array {
  const seed = new TextEncoder().encode(value.trim());
  try {
    nkeys.fromSeed(seed);
  } catch (err) {
    throw new NatsSettingError(
      key,
      `${where(ref)} does not hold an nkey seed (${message(err)})`,
      err,
    );
  }
  return seed;
}

function where(ref: SecretRef): string {
  return "env" in ref ? `environment variable ${ref.env}` : `secret file ${ref.file}`;
}

/** The same blocks nats.js' credsAuthenticator reads: the user JWT first, then its nkey seed. */
const CREDS_BLOCK = /\s*(?:(?:[-]{3,}[^\n]*[-]{3,}\n)(.+)(?:\n\s*[-]{3,}[^\n]*[-]{3,}\n))/gi;

/** The .creds file's bytes, checked: it must hold a JWT and a valid nkey seed. */
function readCreds(file: string): Uint8Array {
  const creds = readSettingFile(file, "nats.auth.credsFile");
  const problem = (what: string, cause?: unknown) =>
    new NatsSettingError("nats.auth.credsFile", `${file} is not a .creds file: ${what}`, cause);
  const blocks = [...creds.toString("utf8").matchAll(CREDS_BLOCK)].map((m) => (m[1] ?? "").trim());
  const [jwt, seed] = blocks;
  if (jwt === undefined || !/^[\w-]+\.[\w-]+\.[\w-]+$/.test(jwt)) {
    throw problem("no user JWT between -----BEGIN NATS USER JWT----- lines");
  }
  if (seed === undefined) throw problem("no nkey seed after the JWT");
  try {
    nkeys.fromSeed(new TextEncoder().encode(seed));
  } catch (err) {
    throw problem(`its nkey seed is not valid (${message(err)})`, err);
  }
  return creds;
}

/**
 * True for the error nats.js raises when the server runs without JetStream,
 * and also for a JetStream publish that no stream takes (its 503).
 */
export function isJetStreamMissing(error: unknown): boolean {
  return error instanceof Error && error.name === "JetStreamNotEnabled";
}

/** Copies of a stream the gateway makes, in a cluster: losing one server loses none. */
const MAX_REPLICAS = 3;

/**
 * The replicas for a stream or KV bucket the gateway creates: one per server
 * of the cluster the connection knows (its INFO's connect_urls, which include
 * the server itself), up to 3.
 */
export function clusterReplicas(nc: NatsConnection): number {
  const info = nc.info;
  if (info?.cluster === undefined) return 1;
  return Math.max(1, Math.min(MAX_REPLICAS, info.connect_urls?.length ?? 1));
}
