/**
 * What the NATS-talking commands (`cutover`, `dlq`) share around their own
 * work: how a bad command line is reported (exit 2) and how the route table is
 * loaded for them (exit 1 on a problem).
 */

import { loadConfig } from "../config/load.js";
import type { GatewayConfig } from "../config/types.js";
import { ConfigError } from "../errors.js";
import type { Output } from "./check.js";
import type { ConnectionSettings } from "./settings.js";

/** A command-line mistake: the message, then the usage, exit code 2. */
export class UsageError extends Error {}

/** Reports a command-line error and returns 2; rethrows anything else. */
export function reportCommandLine(error: unknown, command: string, usage: string, out: Output): 2 {
  if (error instanceof ConfigError) {
    for (const p of error.problems) out.stderr.write(`${p.location}: ${p.message}\n`);
  } else if (error instanceof UsageError) {
    out.stderr.write(`turnout ${command}: ${error.message}\n`);
  } else {
    throw error;
  }
  out.stderr.write(`${usage}\n`);
  return 2;
}

/** The route table for a command, or undefined after reporting its problems. */
export function loadCommandConfig(
  connection: ConnectionSettings,
  out: Output,
): GatewayConfig | undefined {
  try {
    return loadConfig(connection.configFile, { natsUrl: connection.natsUrl });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    out.stderr.write(`${error.message}\n`);
    return undefined;
  }
}
