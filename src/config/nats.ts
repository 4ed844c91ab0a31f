/**
 * The `nats:` section: servers, client name, TLS files and auth. Secrets are only
 * references ({env: VAR} or {file: path}): an inline secret would end up in git,
 * in CI logs and in every copy of the file. Files are resolved against the YAML's
 * folder; `serve` reads them (and the variables) at start, before listening, but
 * not here, so `check` runs in CI without them.
 *
 * A `tls://host:port` server is always dialled with TLS: with no `nats.tls`
 * block, the server's certificate is checked against the system CAs, and a
 * server that does not offer TLS is refused before any credential is sent
 * (see backends/nats/connection.ts). A `nats://` server is dialled with TLS
 * when `nats.tls` is given (then every server must offer it) or when the
 * server itself requires it. The client requires TLS of every server or of
 * none, so a list mixing the two schemes is refused.
 */
import { resolve } from "node:path";
import type { Field } from "./field.js";
import { checkKeys, readBool, readList, readString } from "./read.js";
import { AUTH_KEYS, NATS_KEYS, SECRET_KEYS, TLS_KEYS } from "./schema.js";
import type { NatsAuth, NatsConfig, SecretRef } from "./types.js";
import { hasCredentials, maskedUrlText } from "./url-credentials.js";

const DEFAULT_CLIENT_NAME = "turnout";
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Checks one server URL; returns why it is unusable, or undefined when fine.
 * `tls://` means TLS required (system CAs unless `nats.tls` names a CA).
 */
export function serverUrlProblem(url: string): string | undefined {
  const shown = maskedUrlText(url);
  if (!url.includes("://")) return `"${shown}" needs a scheme: nats://${shown} or tls://${shown}`;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `"${shown}" is not a URL; write nats://host:port or tls://host:port`;
  }
  if (parsed.protocol !== "nats:" && parsed.protocol !== "tls:") {
    return `"${shown}" must use nats:// or tls://, not ${parsed.protocol}//`;
  }
  if (hasCredentials(parsed)) {
    return `"${shown}" holds credentials; put them in nats.auth (user and pass as {env: VAR} or {file: path}), not in the URL`;
  }
  if (parsed.hostname === "") return `"${shown}" has no host`;
  // The client dials host:port and drops the rest without a word. A bare "?"
  // or "#" parses to an empty query or fragment, so the text is looked at too.
  if (!["", "/"].includes(parsed.pathname) || /[?#]/.test(url)) {
    return `"${shown}" is a server address: it cannot carry a path, a query or a fragment; write nats://host:port`;
  }
  if (parsed.port === "0") {
    return `"${shown}" has port 0, where no server listens; give the server's port (4222 by default)`;
  }
  return undefined;
}

/**
 * Checks a server list as a whole: nats.js requires TLS of every server or of
 * none, so one `tls://` address would make it refuse the `nats://` ones that
 * do not offer TLS, with no word of why.
 */
export function serverListProblem(servers: readonly string[]): string | undefined {
  // As the connection reads the scheme (backends/nats/connection.ts isTlsUrl).
  const tls = servers.filter((url) => url.trim().toLowerCase().startsWith("tls://")).length;
  if (tls === 0 || tls === servers.length) return undefined;
  return "mixes tls:// and nats:// servers: the NATS client requires TLS of every server or of none; write tls:// for all, or nats:// for all (with nats.tls when they require TLS)";
}

/** Splits a comma-separated server list (`--nats-url`, TURNOUT_NATS_URL). */
export function splitServers(list: string): string[] {
  return list
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

export interface NatsContext {
  readonly dir: string;
  /** `--nats-url` servers: replace the file's list (which is still checked). */
  readonly servers: readonly string[] | undefined;
}

export function readNats(f: Field, ctx: NatsContext): NatsConfig {
  checkKeys(f, NATS_KEYS);
  const fileServers = readServers(f.child("servers"), ctx.servers !== undefined);
  return {
    servers: ctx.servers ?? fileServers ?? [],
    name: readString(f.child("name")) ?? DEFAULT_CLIENT_NAME,
    tls: readTls(f.child("tls"), ctx.dir),
    auth: readAuth(f.child("auth"), ctx.dir),
  };
}

function readServers(f: Field, overridden: boolean): string[] | undefined {
  if (!f.present) {
    if (!overridden) f.problem("is required (or pass --nats-url), e.g. [nats://127.0.0.1:4222]");
    return undefined;
  }
  const servers = readList(f, (item) => {
    const url = readString(item);
    const problem = url === undefined ? undefined : serverUrlProblem(url);
    if (problem !== undefined) item.problem(problem);
    return problem === undefined ? url : undefined;
  });
  if (servers !== undefined && f.items().length === 0) f.problem("must list at least one server");
  const mixed = servers === undefined ? undefined : serverListProblem(servers);
  if (mixed !== undefined) f.problem(mixed);
  return servers;
}

function readTls(f: Field, dir: string): NatsConfig["tls"] {
  if (!checkKeys(f, TLS_KEYS)) return undefined;
  const [ca, cert, key] = (["ca", "cert", "key"] as const).map((k) => readPath(f.child(k), dir));
  if (f.child("cert").present !== f.child("key").present) {
    f.problem("cert and key go together: a client certificate needs its key");
  }
  return {
    ...optional("ca", ca),
    ...optional("cert", cert),
    ...optional("key", key),
    ...optional("handshakeFirst", readBool(f.child("handshakeFirst"))),
  };
}

function readAuth(f: Field, dir: string): NatsAuth | undefined {
  if (!checkKeys(f, AUTH_KEYS)) return undefined;
  const auth: NatsAuth = {
    ...optional("token", readSecret(f.child("token"), dir)),
    ...optional("user", readString(f.child("user"))),
    ...optional("pass", readSecret(f.child("pass"), dir)),
    ...optional("nkeySeed", readSecret(f.child("nkeySeed"), dir)),
    ...optional("credsFile", readPath(f.child("credsFile"), dir)),
  };
  const methods = ["token", "user", "nkeySeed", "credsFile"].filter((k) => f.child(k).present);
  if (methods.length !== 1) {
    f.problem("give exactly one of token, user + pass, nkeySeed or credsFile");
  }
  if (f.child("user").present !== f.child("pass").present) {
    f.problem("user and pass go together");
  }
  return auth;
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function readPath(f: Field, dir: string): string | undefined {
  const path = readString(f);
  return path === undefined ? undefined : resolve(dir, path);
}

/**
 * A secret reference. Nothing written here is ever echoed in a problem: what was
 * pasted may be the secret itself, and YAML reads `83625147` or `0x5f3759df` as a
 * number, which is just as secret as a string.
 */
function readSecret(f: Field, dir: string): SecretRef | undefined {
  if (!f.present) return undefined;
  if (f.scalar !== undefined && f.scalar !== null) {
    f.problem(
      "an inline secret would end up in git and in logs; use {env: VAR_NAME} or {file: /path/to/secret}",
    );
    return undefined;
  }
  if (!checkKeys(f, SECRET_KEYS)) return undefined;
  if (SECRET_KEYS.filter((k) => f.child(k).present).length !== 1) {
    f.problem("give exactly one of env or file");
    return undefined;
  }
  const file = f.child("file");
  if (file.present) {
    if (typeof file.scalar === "string" && file.scalar.trim() !== "") {
      return { file: resolve(dir, file.scalar) };
    }
    file.problem("must be the path of the file holding the secret");
    return undefined;
  }
  const env = f.child("env");
  if (typeof env.scalar === "string" && ENV_NAME.test(env.scalar)) return { env: env.scalar };
  env.problem(
    "is not an environment variable name (letters, digits and _, not starting with a digit)",
  );
  return undefined;
}
