/**
 * What the NATS-talking commands (`cutover`, `dlq`, `contract`) share around
 * their own work: how a bad command line is reported (exit 2), how the route
 * table is loaded for them (exit 1 on a problem), how a route is looked up and
 * how they connect to NATS.
 */

import { connect, type NatsConnection } from "@nats-io/transport-node";
import { natsConnectOptions, natsSettingProblems } from "../backends/nats/connection.js";
import { loadConfig } from "../config/load.js";
import type { GatewayConfig, NatsConfig, RouteConfig } from "../config/types.js";
import { ConfigError, formatProblemLine } from "../errors.js";
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
  command: string,
  out: Output,
): GatewayConfig | undefined {
  try {
    return loadConfig(connection.configFile, {
      natsUrl: connection.natsUrl,
      // As `serve` does: a secret or file it cannot use is a problem at its key,
      // not a "cannot connect" after the command got that far.
      checkNats: (nats) => natsSettingProblems(nats, connection.configFile),
    });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // One line a problem as `serve` and `check` print them, so one grep reads all.
    for (const problem of error.problems) out.stderr.write(`${formatProblemLine(problem)}\n`);
    out.stderr.write(
      `turnout ${command}: ${error.problems.length} problem(s) in the configuration\n`,
    );
    return undefined;
  }
}

/** The route named `name`, or undefined after naming the known ones. */
export function commandRoute(
  config: GatewayConfig,
  name: string,
  command: string,
  out: Output,
): RouteConfig | undefined {
  const route = config.routes.find((r) => r.name === name);
  if (route === undefined) {
    const known = config.routes.map((r) => r.name).join(", ");
    out.stderr.write(`turnout ${command}: no route named "${name}" (routes: ${known})\n`);
  }
  return route;
}

/**
 * One connection attempt over the listed servers, never reconnecting: a command
 * must not wait forever. Undefined after reporting why it failed.
 */
export async function connectOnce(
  nats: NatsConfig,
  command: string,
  out: Output,
  clientName = "turnout-cli",
): Promise<NatsConnection | undefined> {
  try {
    return await connect({
      ...natsConnectOptions(nats, { name: clientName }),
      reconnect: false,
    });
  } catch (error) {
    out.stderr.write(
      `turnout ${command}: cannot connect to NATS ${nats.servers.join(",")}: ${errorText(error)}\n`,
    );
    return undefined;
  }
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
