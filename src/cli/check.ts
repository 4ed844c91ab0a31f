/**
 * `turnout check --config routes.yaml`: loads the route table against its protos
 * exactly as `serve` would, and lists every problem one a line, for CI.
 * Exit codes: 0 valid, 1 problems in the configuration, 2 bad command line.
 */
import type protobuf from "protobufjs";
import { compileRouteCodec } from "../codec/index.js";
import { loadConfigAndProtos } from "../config/load.js";
import type { GatewayConfig } from "../config/types.js";
import { ConfigError, type ConfigProblem, formatProblemLine, TurnoutError } from "../errors.js";
import { buildOpenApiDocument } from "../openapi/index.js";
import { reportCommandLine } from "./command-errors.js";
import { CONNECTION_FLAGS, parseFlags, resolveConnection } from "./settings.js";

export interface Output {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
}

const USAGE = `usage: turnout check [--config routes.yaml] [--nats-url nats://host:4222,...]

Validates the route table against its protos; exits 1 listing every problem.`;

const FLAGS = { ...CONNECTION_FLAGS, help: { type: "boolean", short: "h" } } as const;

export async function runCheck(
  argv: readonly string[],
  out: Output,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  let settings: ReturnType<typeof resolveConnection>;
  try {
    const { values } = parseFlags(argv, FLAGS);
    if (values.help === true) {
      out.stdout.write(`${USAGE}\n`);
      return 0;
    }
    settings = resolveConnection(values, env);
  } catch (error) {
    return reportCommandLine(error, "check", USAGE, out);
  }
  try {
    const loaded = loadConfigAndProtos(settings.configFile, { natsUrl: settings.natsUrl });
    const refused = compileAsServeWould(loaded.config, loaded.root);
    if (refused.length > 0) {
      for (const error of refused) out.stderr.write(`${settings.configFile}: ${error.message}\n`);
      out.stderr.write(`${refused.length} problem(s) in ${settings.configFile}\n`);
      return 1;
    }
    const routes = loaded.config.routes.length;
    out.stdout.write(`ok: ${routes} routes, ${loaded.messageTypes} proto types\n`);
    return 0;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    writeProblems(out, error.problems);
    out.stderr.write(`${error.problems.length} problem(s) in ${settings.configFile}\n`);
    return 1;
  }
}

/**
 * What `serve` compiles at start beyond the table's own checks (the codecs and
 * the OpenAPI document), so a table that passes here does not fail to start.
 */
function compileAsServeWould(config: GatewayConfig, root: protobuf.Root): TurnoutError[] {
  const refused: TurnoutError[] = [];
  const attempt = (compile: () => unknown) => {
    try {
      compile();
    } catch (error) {
      if (!(error instanceof TurnoutError && error.code === "TURNOUT_ERR_CONFIG")) throw error;
      refused.push(error);
    }
  };
  for (const route of config.routes) attempt(() => compileRouteCodec(root, route));
  attempt(() => buildOpenApiDocument(config, root));
  return refused;
}

function writeProblems(out: Output, problems: readonly ConfigProblem[]): void {
  for (const problem of problems) out.stderr.write(`${formatProblemLine(problem)}\n`);
}
