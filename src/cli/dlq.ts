/**
 * `turnout dlq list | replay [--route R] [--since T]`: reads and re-drives the
 * dead letters in the JetStream stream TURNOUT_DLQ, with the gateway's
 * connection settings (--config, --nats-url, TURNOUT_NATS_URL). `--since` is an
 * RFC 3339 time, a date or a duration back from now ("30m", "2h").
 * Replay prints one line per letter (ok with the worker's status, or failed
 * with the code); a letter replayed ok is deleted from the stream.
 * Exit codes: 0 done (every replay ok), 1 failed (configuration, NATS, a replay
 * that failed), 2 bad command line.
 */
import {
  type DeadLetterFilter,
  listDeadLetters,
  parseSince,
  replayDeadLetters,
} from "../backends/nats/dead-letters.js";
import type { Output } from "./check.js";
import {
  commandRoute,
  connectOnce,
  errorText,
  loadCommandConfig,
  reportCommandLine,
  UsageError,
} from "./command-errors.js";
import { CONNECTION_FLAGS, parseFlags, resolveConnection } from "./settings.js";

const USAGE = `usage: turnout dlq <list | replay> [--route R] [--since T] [options]

  list     the dead letters (requests that failed on NATS with no fallback)
  replay   re-send them to their NATS subject; each one answered ok is deleted

options: --route R (one route), --since T (RFC 3339 time, date, or a duration back from now: 30m, 2h),
         --limit N (the N oldest matching letters only),
         --config routes.yaml, --nats-url nats://host:4222,... (env TURNOUT_NATS_URL)`;

const FLAGS = {
  ...CONNECTION_FLAGS,
  route: { type: "string" },
  since: { type: "string" },
  limit: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

export async function runDlq(
  argv: readonly string[],
  out: Output,
  env: NodeJS.ProcessEnv = process.env,
  now: () => number = Date.now,
): Promise<number> {
  let sub: "list" | "replay";
  let filter: DeadLetterFilter;
  let connection: ReturnType<typeof resolveConnection>;
  try {
    const parsed = parseFlags(argv, FLAGS, true);
    const values = parsed.values;
    if (values.help === true) {
      out.stdout.write(`${USAGE}\n`);
      return 0;
    }
    const [first, ...extra] = parsed.positionals;
    if (first !== "list" && first !== "replay") {
      throw new UsageError(
        first === undefined ? "missing subcommand" : `unknown subcommand "${first}"`,
      );
    }
    if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
    sub = first;
    filter = {
      route: typeof values.route === "string" ? values.route : undefined,
      since: typeof values.since === "string" ? sinceFlag(values.since, now()) : undefined,
      limit: typeof values.limit === "string" ? limitFlag(values.limit) : undefined,
    };
    connection = resolveConnection(values, env);
  } catch (error) {
    return reportCommandLine(error, "dlq", USAGE, out);
  }

  const config = loadCommandConfig(connection, out);
  if (config === undefined) return 1;
  if (filter.route !== undefined && commandRoute(config, filter.route, "dlq", out) === undefined) {
    return 2;
  }

  const nc = await connectOnce(config.nats, "dlq", out);
  if (nc === undefined) return 1;
  try {
    if (sub === "list") {
      const letters = await listDeadLetters(nc, filter);
      for (const l of letters) {
        out.stdout.write(
          `${l.seq}\t${l.at}\t${l.route}\t${l.requestId}\t${l.subject}\t${l.errorCode}\t${l.error}\n`,
        );
      }
      out.stdout.write(`${letters.length} dead letter(s)\n`);
      return 0;
    }
    const timeouts = new Map(config.routes.map((r) => [r.name, r.timeoutMs]));
    const outcomes = await replayDeadLetters(nc, {
      ...filter,
      timeoutOf: (name) => timeouts.get(name),
    });
    let failed = 0;
    for (const o of outcomes) {
      const what =
        o.result === "ok" ? `ok ${o.status} (deleted)` : `failed ${o.code}: ${o.message} (kept)`;
      if (o.result !== "ok") failed++;
      out.stdout.write(`${o.seq}\t${o.route}\t${o.requestId}\t${what}\n`);
    }
    out.stdout.write(
      `replayed ${outcomes.length}: ${outcomes.length - failed} ok, ${failed} failed\n`,
    );
    return failed === 0 ? 0 : 1;
  } catch (error) {
    out.stderr.write(`turnout dlq: ${errorText(error)}\n`);
    return 1;
  } finally {
    await nc.close();
  }
}

function limitFlag(text: string): number {
  if (/^\d+$/.test(text.trim()) && Number(text) >= 1) return Number(text);
  throw new UsageError(`--limit must be a whole number from 1, got "${text}"`);
}

/** The command line's `--since`, refused with the usage when it is not a time. */
function sinceFlag(text: string, now: number): Date {
  try {
    return parseSince(text, now);
  } catch (error) {
    throw new UsageError(`--${(error as Error).message}`);
  }
}
