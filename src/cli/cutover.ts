/**
 * `turnout cutover list | set ROUTE --nats P [--shadow S] --reason TEXT |
 * history ROUTE | rollback ROUTE`: reads and changes the live cutover state in
 * the NATS KV bucket, with the gateway's connection settings (--config,
 * --nats-url, TURNOUT_NATS_URL). Every replica applies a change within a second.
 * Exit codes: 0 done, 1 failed (configuration, NATS, nothing to roll back),
 * 2 bad command line or refused values.
 */
import { hostname, userInfo } from "node:os";
import type { GatewayConfig, RouteConfig } from "../config/types.js";
import {
  checkRouteAllows,
  parseCutoverChange,
  parseRollbackRequest,
  type RollbackRequest,
} from "../control/cutover-rules.js";
import { CutoverBucket, type CutoverHistoryRow } from "../control/cutover-store.js";
import { type PlanStatus, planStatus } from "../control/plan-status.js";
import { TurnoutError } from "../errors.js";
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

const USAGE = `usage: turnout cutover <list | set | history | rollback> [options]

  list                                         every route's live split and its source
  set ROUTE --nats P [--shadow S] --reason TEXT  change a route's split (0-100, two decimals)
  history ROUTE                                who changed the route, when, why, to what
  rollback ROUTE [--reason TEXT]               restore the values before the latest change

options: --config routes.yaml, --nats-url nats://host:4222,... (env TURNOUT_NATS_URL),
         --by NAME (recorded in the history; default user@host)`;

const FLAGS = {
  ...CONNECTION_FLAGS,
  nats: { type: "string" },
  shadow: { type: "string" },
  reason: { type: "string" },
  by: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

const SUBCOMMANDS = ["list", "set", "history", "rollback"] as const;
type Subcommand = (typeof SUBCOMMANDS)[number];

export async function runCutover(
  argv: readonly string[],
  out: Output,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  let sub: Subcommand;
  let routeName: string | undefined;
  let values: FlagValues;
  let connection: ReturnType<typeof resolveConnection>;
  try {
    const parsed = parseFlags(argv, FLAGS, true);
    values = parsed.values;
    if (values.help === true) {
      out.stdout.write(`${USAGE}\n`);
      return 0;
    }
    [sub, routeName] = readPositionals(parsed.positionals);
    if (sub === "set" && typeof values.nats !== "string")
      throw new UsageError("set needs --nats P");
    refuseFlagsNotFor(sub, values);
    connection = resolveConnection(values, env);
  } catch (error) {
    return reportCommandLine(error, "cutover", USAGE, out);
  }

  const config = loadCommandConfig(connection, "cutover", out);
  if (config === undefined) return 1;
  let route: RouteConfig | undefined;
  if (routeName !== undefined) {
    route = commandRoute(config, routeName, "cutover", out);
    if (route === undefined) return 2;
  }
  // Checked before NATS is reached: refused values are exit 2 whatever the server has.
  let run: (bucket: CutoverBucket) => Promise<number>;
  try {
    run = prepare(sub, config, route, values, env, out);
  } catch (error) {
    if (!isBadField(error)) throw error;
    out.stderr.write(`turnout cutover: ${flagProblem(error)}\n`);
    return 2;
  }

  const nc = await connectOnce(config.nats, "cutover", out);
  if (nc === undefined) return 1;
  try {
    const bucket = await CutoverBucket.open(nc, (message) =>
      out.stderr.write(`turnout cutover: ${shown(message)}\n`),
    );
    return await run(bucket);
  } catch (error) {
    if (isBadField(error)) {
      out.stderr.write(`turnout cutover: ${flagProblem(error)}\n`);
      return 2;
    }
    out.stderr.write(`turnout cutover: ${errorText(error)}\n`);
    return 1;
  } finally {
    await nc.close();
  }
}

/**
 * The subcommand's work on the bucket, its request checked first (throws
 * TURNOUT_ERR_BAD_FIELD): `set` against routes.yaml's values (the rules hold
 * for them) and again, when written, against the live ones it builds on.
 */
function prepare(
  sub: Subcommand,
  config: GatewayConfig,
  route: RouteConfig | undefined,
  values: FlagValues,
  env: NodeJS.ProcessEnv,
  out: Output,
): (bucket: CutoverBucket) => Promise<number> {
  switch (sub) {
    case "list":
      return (bucket) => list(bucket, config, out);
    case "history":
      return (bucket) => history(bucket, route!, out);
    case "set": {
      const body = changeBody(values);
      const by = defaultBy(env);
      parseCutoverChange(body, route!, route!.cutover, by);
      return (bucket) => set(bucket, route!, body, by, out);
    }
    case "rollback": {
      const request = parseRollbackRequest(
        { reason: values.reason, by: values.by },
        defaultBy(env),
      );
      return (bucket) => rollback(bucket, route!, request, out);
    }
  }
}

function isBadField(error: unknown): error is TurnoutError {
  return error instanceof TurnoutError && error.code === "TURNOUT_ERR_BAD_FIELD";
}

/** A refused field as the flag that gave it: `--nats must be from 0 to 100, got 200`. */
function flagProblem(error: TurnoutError): string {
  return `--${error.field} ${error.message.replace(/^\S+ /, "")}`;
}

/** The change flags each subcommand takes: any other is refused, not silently dropped. */
const CHANGE_FLAGS: Readonly<Record<Subcommand, readonly string[]>> = {
  list: [],
  set: ["nats", "shadow", "reason", "by"],
  history: [],
  rollback: ["reason", "by"],
};

function refuseFlagsNotFor(sub: Subcommand, values: Record<string, unknown>): void {
  for (const flag of ["nats", "shadow", "reason", "by"]) {
    if (values[flag] !== undefined && !CHANGE_FLAGS[sub].includes(flag)) {
      throw new UsageError(`--${flag} does not apply to ${sub}`);
    }
  }
}

function readPositionals(positionals: readonly string[]): [Subcommand, string | undefined] {
  const [sub, route, ...extra] = positionals;
  if (sub === undefined) throw new UsageError("missing subcommand");
  if (!(SUBCOMMANDS as readonly string[]).includes(sub)) {
    throw new UsageError(`unknown subcommand "${sub}"`);
  }
  if (sub === "list") {
    if (route !== undefined) throw new UsageError(`list takes no route, got "${route}"`);
    return ["list", undefined];
  }
  if (route === undefined) throw new UsageError(`${sub} needs a ROUTE`);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  return [sub as Subcommand, route];
}

async function list(bucket: CutoverBucket, config: GatewayConfig, out: Output): Promise<number> {
  const rows = [["ROUTE", "NATS", "SHADOW", "SOURCE", "PLAN", "AT", "BY", "REASON"]];
  for (const route of config.routes) {
    const live = await bucket.current(route);
    const plan = planColumn(planStatus(route, live));
    rows.push(
      live === undefined
        ? [
            route.name,
            pct(route.cutover.nats),
            pct(route.cutover.shadow),
            "file",
            plan,
            "-",
            "-",
            "-",
          ]
        : [
            route.name,
            pct(live.nats),
            pct(live.shadow),
            "live",
            plan,
            live.at,
            live.by,
            live.reason,
          ],
    );
  }
  out.stdout.write(table(rows));
  return 0;
}

/** `running -> 25`, `paused`, `stopped`, `done`, or `-` without a plan. */
function planColumn(status: PlanStatus | undefined): string {
  if (status === undefined) return "-";
  return status.next === undefined ? status.state : `${status.state} -> ${pct(status.next)}`;
}

async function set(
  bucket: CutoverBucket,
  route: RouteConfig,
  body: Record<string, unknown>,
  by: string,
  out: Output,
): Promise<number> {
  const written = await bucket.change(route, (live) => parseCutoverChange(body, route, live, by));
  out.stdout.write(
    `${route.name}: nats ${pct(written.nats)}% shadow ${pct(written.shadow)}% (revision ${written.revision})\n`,
  );
  return 0;
}

/** The change `set` asks for, as the admin API's body: the rules check both alike. */
function changeBody(values: FlagValues): Record<string, unknown> {
  const body: Record<string, unknown> = {
    nats: percent(String(values.nats), "nats"),
    reason: values.reason,
  };
  if (typeof values.shadow === "string") body.shadow = percent(values.shadow, "shadow");
  // Given, even blank, it is checked as given: only a missing --by means user@host.
  if (values.by !== undefined) body.by = values.by;
  return body;
}

async function history(bucket: CutoverBucket, route: RouteConfig, out: Output): Promise<number> {
  const entries = await bucket.history(route.name);
  if (entries.length === 0) {
    out.stdout.write(`${route.name}: no live value yet (routes.yaml's values apply)\n`);
    return 0;
  }
  const rows = [["REVISION", "AT", "BY", "NATS", "SHADOW", "REASON"]];
  for (const e of entries) rows.push(historyRow(e));
  out.stdout.write(table(rows));
  return 0;
}

async function rollback(
  bucket: CutoverBucket,
  route: RouteConfig,
  request: RollbackRequest,
  out: Output,
): Promise<number> {
  const { from, to } = await bucket.rollback(route, request, (restored) =>
    checkRouteAllows(route, restored),
  );
  out.stdout.write(
    `${route.name}: rolled back from nats ${pct(from.nats)}% shadow ${pct(from.shadow)}% to nats ${pct(to.nats)}% shadow ${pct(to.shadow)}% (revision ${to.revision})\n`,
  );
  return 0;
}

/** A value as written; a delete, a purge or an ignored value says what it did instead. */
function historyRow(e: CutoverHistoryRow): string[] {
  const revision = String(e.revision);
  switch (e.kind) {
    case "value":
      return [revision, e.at, e.by, pct(e.nats), pct(e.shadow), e.reason];
    case "deleted":
      return [revision, e.at, "-", "-", "-", "deleted: routes.yaml's values apply"];
    case "purged":
      return [revision, e.at, "-", "-", "-", "purged: routes.yaml's values apply"];
    case "ignored":
      return [revision, e.at, "-", "-", "-", `ignored by the replicas (${e.why})`];
  }
}

/** A flag's percentage as a number; the range and decimals are checked with the change. */
function percent(text: string, flag: string): number | string {
  return /^\s*\d+(\.\d+)?\s*$/.test(text) ? Number(text) : `--${flag} ${text}`;
}

/** `by` when --by is not given: user@host. */
function defaultBy(env: NodeJS.ProcessEnv): string {
  let user = env.USER ?? env.USERNAME;
  if (user === undefined) {
    try {
      user = userInfo().username;
    } catch {
      user = "unknown";
    }
  }
  return `${user}@${hostname()}`;
}

function pct(value: number): string {
  return String(value);
}

function table(cells: string[][]): string {
  const rows = cells.map((row) => row.map(shown));
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows
    .map((r) =>
      r
        .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n")
    .concat("\n");
}
