/**
 * Flags and TURNOUT_* env vars shared by every command that serves or talks to
 * NATS, resolved the same way everywhere: a flag beats its env var, which beats
 * the file (only nats.servers exists in both) or the built-in default. A bad
 * value is a ConfigError naming the flag or the env var it came from.
 */
import { existsSync } from "node:fs";
import { isIP } from "node:net";
import { type ParseArgsConfig, parseArgs } from "node:util";
import { serverListProblem, serverUrlProblem, splitServers } from "../config/nats.js";
import { closest } from "../config/suggest.js";
import { ConfigError, type ConfigProblem } from "../errors.js";
import type { TrustProxy } from "../server/gateway.js";

export type FlagOptions = NonNullable<ParseArgsConfig["options"]>;

/** Where the route table and the NATS servers come from: every NATS command takes these. */
export const CONNECTION_FLAGS = {
  config: { type: "string" },
  "nats-url": { type: "string" },
} as const satisfies FlagOptions;

/** The listeners, for `serve`. */
export const LISTENER_FLAGS = {
  port: { type: "string" },
  "admin-port": { type: "string" },
  host: { type: "string" },
  workers: { type: "string" },
  "log-level": { type: "string" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  "trust-proxy": { type: "string" },
} as const satisfies FlagOptions;

/** pino's levels, for `--log-level` / TURNOUT_LOG_LEVEL. */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

export interface ConnectionSettings {
  readonly configFile: string;
  /** Comma-separated servers replacing the file's nats.servers; undefined keeps the file's. */
  readonly natsUrl: string | undefined;
}

export interface Settings extends ConnectionSettings {
  readonly port: number;
  readonly adminPort: number;
  readonly host: string;
  /** node:cluster worker processes. */
  readonly workers: number;
  /** pino level: `--log-level`, TURNOUT_LOG_LEVEL, else info. */
  readonly logLevel: string;
  /** HTTPS on both listeners: PEM files from `--tls-cert`/`--tls-key` (TURNOUT_TLS_CERT/_KEY). */
  readonly tls: { readonly certFile: string; readonly keyFile: string } | undefined;
  /** Which proxies' X-Forwarded-* headers to believe (`--trust-proxy`); none by default. */
  readonly trustProxy: TrustProxy | undefined;
}

export type FlagValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

export interface ParsedFlags {
  readonly values: FlagValues;
  readonly positionals: string[];
}

/**
 * Strict parsing: an unknown flag or a missing value is a ConfigError, with a
 * hint, and so is a flag given twice (parseArgs would keep the last, a value
 * the caller may not have meant).
 */
export function parseFlags(
  argv: readonly string[],
  options: FlagOptions,
  allowPositionals = false,
): ParsedFlags {
  let parsed: ReturnType<typeof parseWithTokens>;
  try {
    parsed = parseWithTokens(argv, options, allowPositionals);
  } catch (error) {
    const flag = /'(-[^' ]*)/.exec((error as Error).message)?.[1] ?? "(arguments)";
    throw new ConfigError([
      { location: flag, key: flag, message: flagMessage(error as Error, flag, options) },
    ]);
  }
  const seen = new Set<string>();
  for (const token of parsed.tokens) {
    if (token.kind !== "option") continue;
    if (seen.has(token.name)) {
      const flag = `--${token.name}`;
      throw new ConfigError([
        { location: flag, key: flag, message: "given more than once: give it once" },
      ]);
    }
    seen.add(token.name);
  }
  return { values: parsed.values, positionals: parsed.positionals };
}

function parseWithTokens(argv: readonly string[], options: FlagOptions, allowPositionals: boolean) {
  return parseArgs({ args: [...argv], options, strict: true, allowPositionals, tokens: true });
}

function flagMessage(error: Error, flag: string, options: FlagOptions): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== "ERR_PARSE_ARGS_UNKNOWN_OPTION") return error.message;
  const known = Object.keys(options).map((name) => `--${name}`);
  const match = closest(flag, known);
  const hint = match === undefined ? `known flags: ${known.join(", ")}` : `did you mean ${match}?`;
  return `unknown flag ${flag}; ${hint}`;
}

/** `--config` and `--nats-url` with their env vars; the servers are checked here already. */
export function resolveConnection(values: FlagValues, env: NodeJS.ProcessEnv): ConnectionSettings {
  const problems: ConfigProblem[] = [];
  const config = pick(values, env, "config", "TURNOUT_CONFIG");
  const natsUrl = pick(values, env, "nats-url", "TURNOUT_NATS_URL");
  if (config?.value === "") {
    problems.push(problem(config.source, "config", "is empty: give the routes file's path"));
  }
  if (natsUrl !== undefined) {
    const servers = splitServers(natsUrl.value);
    if (servers.length === 0) problems.push(problem(natsUrl.source, "nats-url", "lists no server"));
    for (const server of servers) {
      const wrong = serverUrlProblem(server);
      if (wrong !== undefined) problems.push(problem(natsUrl.source, "nats-url", wrong));
    }
    const mixed = serverListProblem(servers);
    if (mixed !== undefined) problems.push(problem(natsUrl.source, "nats-url", mixed));
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { configFile: config?.value ?? "./routes.yaml", natsUrl: natsUrl?.value };
}

/** Every flag of `turnout serve`: connection plus listeners. */
export function resolveSettings(argv: readonly string[], env: NodeJS.ProcessEnv): Settings {
  const { values } = parseFlags(argv, { ...CONNECTION_FLAGS, ...LISTENER_FLAGS });
  const problems: ConfigProblem[] = [];
  let connection: ConnectionSettings | undefined;
  try {
    connection = resolveConnection(values, env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(...error.problems);
  }
  const int = (flag: string, envName: string, fallback: number, min: number, max: number) =>
    readInt(pick(values, env, flag, envName), flag, fallback, min, max, problems);
  const port = int("port", "TURNOUT_PORT", 8080, 0, 65535);
  const adminPort = int("admin-port", "TURNOUT_ADMIN_PORT", 9090, 0, 65535);
  const workers = int("workers", "TURNOUT_WORKERS", 1, 1, 1024);
  const host = readHost(values, env, problems);
  // Port 0 asks the OS for a free port each, so only equal non-zero ports clash.
  if (port === adminPort && port !== 0) {
    const source = pick(values, env, "admin-port", "TURNOUT_ADMIN_PORT")?.source ?? "--admin-port";
    problems.push(problem(source, "admin-port", `must differ from the port (${port})`));
  }
  const logLevel = pick(values, env, "log-level", "TURNOUT_LOG_LEVEL");
  if (logLevel !== undefined && !(LOG_LEVELS as readonly string[]).includes(logLevel.value)) {
    const message = `must be one of ${LOG_LEVELS.join(", ")}, got "${logLevel.value}"`;
    problems.push(problem(logLevel.source, "log-level", message));
  }
  const tls = readTlsFiles(values, env, problems);
  checkAdminToken(env.TURNOUT_ADMIN_TOKEN, problems);
  const trustProxy = readTrustProxy(
    pick(values, env, "trust-proxy", "TURNOUT_TRUST_PROXY"),
    problems,
  );
  if (problems.length > 0 || connection === undefined) throw new ConfigError(problems);
  return {
    tls,
    trustProxy,
    ...connection,
    port,
    adminPort,
    host: host ?? "0.0.0.0",
    workers,
    logLevel: logLevel?.value ?? "info",
  };
}

/**
 * `--host` / TURNOUT_HOST. Empty is refused, from the env var too (which elsewhere
 * counts as unset): Node listens on every interface for an empty host, and the
 * default 0.0.0.0 is every IPv4 one, so `TURNOUT_HOST=$BIND` with BIND unset must
 * not quietly expose a gateway meant for one interface.
 */
function readHost(
  values: FlagValues,
  env: NodeJS.ProcessEnv,
  problems: ConfigProblem[],
): string | undefined {
  const picked =
    pick(values, env, "host", "TURNOUT_HOST") ??
    (env.TURNOUT_HOST === "" ? { value: "", source: "TURNOUT_HOST" } : undefined);
  if (picked === undefined) return undefined;
  if (picked.value.trim() === "") {
    const message = "is empty: give a host name or address (0.0.0.0 for every IPv4 interface)";
    problems.push(problem(picked.source, "host", message));
  } else if (/\s/.test(picked.value)) {
    const message = `"${picked.value}" is not a host name or address`;
    problems.push(problem(picked.source, "host", message));
  } else return picked.value;
  return undefined;
}

interface Picked {
  readonly value: string;
  /** `--port` or `TURNOUT_PORT`: named in problems so the user knows what to fix. */
  readonly source: string;
}

/** The flag if given, else the env var if set and not empty. */
function pick(
  values: FlagValues,
  env: NodeJS.ProcessEnv,
  flag: string,
  envName: string,
): Picked | undefined {
  const given = values[flag];
  if (typeof given === "string") return { value: given, source: `--${flag}` };
  const fromEnv = env[envName];
  return fromEnv === undefined || fromEnv === "" ? undefined : { value: fromEnv, source: envName };
}

function readInt(
  picked: Picked | undefined,
  key: string,
  fallback: number,
  min: number,
  max: number,
  problems: ConfigProblem[],
): number {
  if (picked === undefined) return fallback;
  const value = Number(picked.value);
  if (/^\d+$/.test(picked.value.trim()) && value >= min && value <= max) return value;
  const message = `must be a whole number from ${min} to ${max}, got "${picked.value}"`;
  problems.push(problem(picked.source, key, message));
  return fallback;
}

/**
 * `true` (every hop: only when the gateway is reachable through proxies alone),
 * a number of hops, or a comma-separated list of proxy addresses or CIDRs.
 */
function readTrustProxy(
  picked: Picked | undefined,
  problems: ConfigProblem[],
): TrustProxy | undefined {
  if (picked === undefined) return undefined;
  const text = picked.value.trim();
  if (text === "true") return true;
  if (text === "false") return undefined;
  if (/^\d+$/.test(text) && Number(text) >= 1) return Number(text);
  const entries = text.split(",").map((entry) => entry.trim());
  const bad = entries.find((entry) => !isAddressOrCidr(entry));
  if (bad === undefined) return entries;
  const message = `must be true, false, a number of hops, or proxy addresses/CIDRs (comma-separated); "${bad}" is none of these`;
  problems.push(problem(picked.source, "trust-proxy", message));
  return undefined;
}

function isAddressOrCidr(entry: string): boolean {
  const [address = "", bits, ...rest] = entry.split("/");
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (bits === undefined) return true;
  return /^\d+$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}

/**
 * A token no `Authorization: Bearer` header can carry would lock `/admin` for
 * good without a word: white space (a secret file's trailing newline, most
 * often) or bytes outside visible ASCII.
 */
function checkAdminToken(token: string | undefined, problems: ConfigProblem[]): void {
  if (token === undefined || token === "" || /^[\x21-\x7e]+$/.test(token)) return;
  const why = /\s/.test(token)
    ? "contains white space (a trailing newline from a secret file?)"
    : "contains characters outside visible ASCII";
  problems.push(
    problem(
      "TURNOUT_ADMIN_TOKEN",
      "admin-token",
      `${why}, which no Authorization: Bearer header can carry: remove them`,
    ),
  );
}

function problem(location: string, key: string, message: string): ConfigProblem {
  return { location, key, message };
}

/** Both files or neither; each must be readable now rather than fail at listen time. */
function readTlsFiles(
  values: FlagValues,
  env: NodeJS.ProcessEnv,
  problems: ConfigProblem[],
): Settings["tls"] {
  const cert = pick(values, env, "tls-cert", "TURNOUT_TLS_CERT");
  const key = pick(values, env, "tls-key", "TURNOUT_TLS_KEY");
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined || key === undefined) {
    const given = (cert ?? key)!;
    problems.push(
      problem(
        given.source,
        cert ? "tls-key" : "tls-cert",
        "HTTPS needs both --tls-cert and --tls-key",
      ),
    );
    return undefined;
  }
  for (const [flag, file] of [
    ["tls-cert", cert],
    ["tls-key", key],
  ] as const) {
    if (!existsSync(file.value))
      problems.push(problem(file.source, flag, `no such file: ${file.value}`));
  }
  return { certFile: cert.value, keyFile: key.value };
}
