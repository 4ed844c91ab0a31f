/**
 * `turnout dlq list | replay [--route R] [--since T] [--limit N] [--after SEQ]`
 * and `turnout dlq delete SEQ...`: read, re-drive and delete the dead letters
 * in the JetStream stream TURNOUT_DLQ, with the gateway's connection settings
 * (--config, --nats-url, TURNOUT_NATS_URL). `--since` is an RFC 3339 time, a
 * date or a duration back from now ("30m", "2h").
 * Replay prints one line per letter (ok with the worker's status, failed with
 * the code, or skipped when another replay has it); a letter replayed ok is
 * deleted from the stream.
 * Exit codes: 0 done (no replay failed, every letter to delete found), 1 failed
 * (configuration, NATS, a replay that failed, a letter not found), 2 bad
 * command line.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import {
  type DeadLetterFilter,
  deleteDeadLetter,
  listDeadLetters,
  parseSince,
  type ReplayOutcome,
  replayDeadLetters,
} from "../backends/nats/dead-letters.js";
import type { GatewayConfig } from "../config/types.js";
import type { Output } from "./check.js";
import {
  commandRoute,
  connectOnce,
  errorText,
  loadCommandConfig,
  reportCommandLine,
  UsageError,
} from "./command-errors.js";
import { CONNECTION_FLAGS, type FlagValues, parseFlags, resolveConnection } from "./settings.js";
import { shown } from "./terminal-text.js";

const USAGE = `usage: turnout dlq <list | replay> [--route R] [--since T] [--limit N] [--after SEQ] [options]
       turnout dlq delete SEQ... [options]

  list     the dead letters (requests that failed on NATS and legacy did not serve)
  replay   re-send them to their NATS subject; each one answered ok is deleted
  delete   delete the letters at these stream sequences (the first column of list)

options: --route R (one route), --since T (RFC 3339 time, date, or a duration back from now: 30m, 2h),
         --limit N (the N oldest matching letters only),
         --after SEQ (only letters after this sequence: go on where a --limit run stopped),
         --config routes.yaml, --nats-url nats://host:4222,... (env TURNOUT_NATS_URL)`;

const FLAGS = {
  ...CONNECTION_FLAGS,
  route: { type: "string" },
  since: { type: "string" },
  limit: { type: "string" },
  after: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

type Command =
  | { readonly sub: "list" | "replay"; readonly filter: DeadLetterFilter }
  | { readonly sub: "delete"; readonly seqs: readonly number[] };

export async function runDlq(
  argv: readonly string[],
  out: Output,
  env: NodeJS.ProcessEnv = process.env,
  now: () => number = Date.now,
): Promise<number> {
  let command: Command;
  let connection: ReturnType<typeof resolveConnection>;
  try {
    const parsed = parseFlags(argv, FLAGS, true);
    if (parsed.values.help === true) {
      out.stdout.write(`${USAGE}\n`);
      return 0;
    }
    command = parseCommand(parsed.positionals, parsed.values, now());
    connection = resolveConnection(parsed.values, env);
  } catch (error) {
    return reportCommandLine(error, "dlq", USAGE, out);
  }

  const config = loadCommandConfig(connection, "dlq", out);
  if (config === undefined) return 1;
  const route = command.sub === "delete" ? undefined : command.filter.route;
  if (route !== undefined && commandRoute(config, route, "dlq", out) === undefined) return 2;

  const nc = await connectOnce(config.nats, "dlq", out);
  if (nc === undefined) return 1;
  try {
    if (command.sub === "delete") return await remove(nc, command.seqs, out);
    if (command.sub === "list") return await list(nc, command.filter, out);
    return await replay(nc, config, command.filter, out);
  } catch (error) {
    out.stderr.write(`turnout dlq: ${errorText(error)}\n`);
    return 1;
  } finally {
    await nc.close();
  }
}

function parseCommand(positionals: readonly string[], values: FlagValues, now: number): Command {
  const [first, ...rest] = positionals;
  if (first === "delete") {
    for (const flag of ["route", "since", "limit", "after"]) {
      if (values[flag] !== undefined) throw new UsageError(`delete takes sequences, not --${flag}`);
    }
    if (rest.length === 0) throw new UsageError("delete needs the sequence of a letter");
    return { sub: "delete", seqs: rest.map((text) => wholeNumber(text, "a sequence", 1)) };
  }
  if (first !== "list" && first !== "replay") {
    throw new UsageError(
      first === undefined ? "missing subcommand" : `unknown subcommand "${first}"`,
    );
  }
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  const text = (name: string) => (typeof values[name] === "string" ? values[name] : undefined);
  const since = text("since");
  const limit = text("limit");
  const after = text("after");
  return {
    sub: first,
    filter: {
      route: text("route"),
      since: since === undefined ? undefined : sinceFlag(since, now),
      limit: limit === undefined ? undefined : wholeNumber(limit, "--limit", 1),
      after: after === undefined ? undefined : wholeNumber(after, "--after", 0),
    },
  };
}

async function list(nc: NatsConnection, filter: DeadLetterFilter, out: Output): Promise<number> {
  const letters = await listDeadLetters(nc, filter);
  for (const l of letters) {
    const cells = [l.at, l.route, l.requestId, l.subject, l.errorCode, l.error].map(shown);
    out.stdout.write(`${[l.seq, ...cells].join("\t")}\n`);
  }
  out.stdout.write(`${letters.length} dead letter(s)\n`);
  return 0;
}

async function replay(
  nc: NatsConnection,
  config: GatewayConfig,
  filter: DeadLetterFilter,
  out: Output,
): Promise<number> {
  const timeouts = new Map(config.routes.map((r) => [r.name, r.timeoutMs]));
  const report = await replayDeadLetters(nc, {
    ...filter,
    timeoutOf: (name) => timeouts.get(name),
  });
  const count = { ok: 0, failed: 0, skipped: 0 };
  for (const o of report.outcomes) {
    count[o.result]++;
    const cells = [o.route, o.requestId, outcomeText(o)].map(shown);
    out.stdout.write(`${[o.seq, ...cells].join("\t")}\n`);
  }
  // Skipped letters are another replay's to report.
  const skipped = count.skipped === 0 ? "" : `, ${count.skipped} skipped`;
  out.stdout.write(
    `replayed ${report.outcomes.length}: ${count.ok} ok, ${count.failed} failed${skipped}\n`,
  );
  if (report.stopped !== undefined) {
    out.stderr.write(`turnout dlq: replay stopped: ${report.stopped}\n`);
  }
  if (report.more) out.stdout.write(`more letters left: go on with --after ${report.after}\n`);
  return count.failed === 0 && report.stopped === undefined ? 0 : 1;
}

function outcomeText(o: ReplayOutcome): string {
  if (o.result === "ok") return `ok ${o.status} (deleted)`;
  if (o.result === "failed") return `failed ${o.code}: ${o.message} (kept)`;
  return `skipped: ${o.message}`;
}

async function remove(nc: NatsConnection, seqs: readonly number[], out: Output): Promise<number> {
  let missing = 0;
  for (const seq of seqs) {
    const letter = await deleteDeadLetter(nc, seq);
    if (letter === undefined) {
      missing++;
      out.stderr.write(`turnout dlq: no dead letter at sequence ${seq}\n`);
    } else {
      const cells = [letter.route, letter.requestId].map(shown);
      out.stdout.write(`${[seq, ...cells, "deleted"].join("\t")}\n`);
    }
  }
  return missing === 0 ? 0 : 1;
}

function wholeNumber(text: string, what: string, min: number): number {
  if (/^\d{1,15}$/.test(text.trim()) && Number(text) >= min) return Number(text);
  throw new UsageError(`${what} must be a whole number from ${min}, got "${text}"`);
}

/** The command line's `--since`, refused with the usage when it is not a time. */
function sinceFlag(text: string, now: number): Date {
  try {
    return parseSince(text, now, "--since");
  } catch (error) {
    throw new UsageError(errorText(error));
  }
}
