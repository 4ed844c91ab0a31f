/**
 * `turnout contract --samples FILE.jsonl`: replays recorded request/response
 * pairs through the NATS path (every route as if cut over to 100%) and
 * reports every difference, for a service team's CI before it raises a
 * percentage. The connection comes from --config and --nats-url like every
 * NATS command.
 * Exit codes: 0 every sample matches, 1 any difference (or NATS unreachable),
 * 2 bad command line, samples file or configuration (nothing replayed).
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { natsConnectOptions } from "../backends/nats/connection.js";
import { NatsLink } from "../backends/nats/link.js";
import { loadConfigAndProtos } from "../config/load.js";
import { replaySamples } from "../contract/replay.js";
import { jsonReport, summarize, textReport } from "../contract/report.js";
import { readSamples, type Sample, SamplesError } from "../contract/samples.js";
import { ConfigError, formatProblemLine, TurnoutError } from "../errors.js";
import type { Output } from "./check.js";
import { connectOnce, reportCommandLine, UsageError } from "./command-errors.js";
import {
  CONNECTION_FLAGS,
  type ConnectionSettings,
  parseFlags,
  resolveConnection,
} from "./settings.js";

export const CONTRACT_USAGE = `usage: turnout contract --samples FILE.jsonl [--concurrency N] [--json]
                        [--config routes.yaml] [--nats-url nats://host:4222,...]

Replays recorded request/response pairs (one JSON object a line: method, path,
headers, body, status, response; blank lines and # comments skipped) through
the NATS path of the route table, every route as if cut over to 100%, and
compares each answer with the recorded one like the shadow comparison does.

  --samples FILE      the recorded pairs (required)
  --concurrency N     samples in flight at once, 1-64 (default 1)
  --json              print one JSON report instead of text

exit: 0 all match, 1 any difference or NATS unreachable, 2 bad command line,
samples file or configuration`;

const FLAGS = {
  ...CONNECTION_FLAGS,
  samples: { type: "string" },
  concurrency: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

const MAX_CONCURRENCY = 64;

interface ContractArgs {
  readonly samplesFile: string;
  readonly concurrency: number;
  readonly json: boolean;
  readonly connection: ConnectionSettings;
}

export async function runContract(
  argv: readonly string[],
  out: Output,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  let args: ContractArgs | "help";
  try {
    args = parseContractArgs(argv, env);
  } catch (error) {
    return reportCommandLine(error, "contract", CONTRACT_USAGE, out);
  }
  if (args === "help") {
    out.stdout.write(`${CONTRACT_USAGE}\n`);
    return 0;
  }
  const samples = loadSamples(args.samplesFile, out);
  if (samples === undefined) return 2;
  const loaded = loadTable(args.connection, out);
  if (loaded === undefined) return 2;
  const nc = await connectFor(loaded.config.nats, out);
  if (typeof nc === "number") return nc;

  const link = new NatsLink();
  link.attach(nc);
  try {
    const results = await replaySamples(samples, {
      ...loaded,
      requester: link,
      concurrency: args.concurrency,
    });
    out.stdout.write(args.json ? jsonReport(results) : textReport(results));
    return summarize(results).failed === 0 ? 0 : 1;
  } finally {
    await link.drain();
  }
}

function parseContractArgs(argv: readonly string[], env: NodeJS.ProcessEnv): ContractArgs | "help" {
  const { values, positionals } = parseFlags(argv, FLAGS, true);
  if (values.help === true) return "help";
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const samplesFile = values.samples;
  if (typeof samplesFile !== "string" || samplesFile === "") {
    throw new UsageError("--samples FILE.jsonl is required");
  }
  return {
    samplesFile,
    concurrency: readConcurrency(values.concurrency),
    json: values.json === true,
    connection: resolveConnection(values, env),
  };
}

function readConcurrency(value: unknown): number {
  if (value === undefined) return 1;
  const text = String(value).trim();
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > MAX_CONCURRENCY) {
    throw new UsageError(
      `--concurrency must be a whole number from 1 to ${MAX_CONCURRENCY}, got "${text}"`,
    );
  }
  return n;
}

/** The samples, or undefined after listing every bad line (or why the file can't be read). */
function loadSamples(file: string, out: Output): Sample[] | undefined {
  try {
    return readSamples(file);
  } catch (error) {
    if (error instanceof SamplesError) {
      out.stderr.write(`${error.message}\n`);
      out.stderr.write(`${error.problems.length} problem(s) in ${file}; nothing replayed\n`);
    } else if (error instanceof TurnoutError && error.code === "TURNOUT_ERR_SAMPLES_UNREADABLE") {
      out.stderr.write(`turnout contract: ${error.message}\n`);
    } else {
      throw error;
    }
    return undefined;
  }
}

/** The table and its protos, or undefined after listing its problems as `turnout check` does. */
function loadTable(connection: ConnectionSettings, out: Output) {
  try {
    return loadConfigAndProtos(connection.configFile, { natsUrl: connection.natsUrl });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const p of error.problems) out.stderr.write(`${formatProblemLine(p)}\n`);
    out.stderr.write(`${error.problems.length} problem(s) in ${connection.configFile}\n`);
    return undefined;
  }
}

const CLIENT_NAME = "turnout-contract";

/**
 * One connection attempt (a contract run in CI must not wait forever); a secret
 * the table names but that cannot be read is a configuration problem: exit 2.
 */
async function connectFor(
  nats: Parameters<typeof natsConnectOptions>[0],
  out: Output,
): Promise<NatsConnection | number> {
  try {
    natsConnectOptions(nats, { name: CLIENT_NAME });
  } catch (error) {
    // A secret named by the file is missing: the configuration is at fault.
    if (!(error instanceof TurnoutError)) throw error;
    out.stderr.write(`turnout contract: ${error.message}\n`);
    return 2;
  }
  return (await connectOnce(nats, "contract", out, CLIENT_NAME)) ?? 1;
}
