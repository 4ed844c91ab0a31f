/**
 * `turnout healthcheck`: asks the local gateway's admin listener for
 * `/healthz`, where `serve` with the same flags and TURNOUT_* variables
 * listens: its admin port, its host (loopback when it listens on every
 * interface), HTTPS when it has a certificate. Exit 0 on a 200, 1 otherwise.
 * For a container's HEALTHCHECK, which would otherwise hard-code one port and
 * scheme and fail for any other configuration.
 */
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { Output } from "./check.js";
import { reportCommandLine } from "./command-errors.js";
import { resolveSettings, type Settings } from "./settings.js";

const USAGE = `usage: turnout healthcheck [the flags of turnout serve: --admin-port, --host, --tls-cert, ...]
(env: TURNOUT_ADMIN_PORT, TURNOUT_HOST, TURNOUT_TLS_CERT, ... as for serve)`;

/** A probe answers at once or not at all: Docker's own timeout is 3 s. */
const TIMEOUT_MS = 2500;

export async function runHealthcheck(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  out: Output,
): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    out.stdout.write(`${USAGE}\n`);
    return 0;
  }
  let settings: Settings;
  try {
    settings = resolveSettings(argv, env);
  } catch (error) {
    return reportCommandLine(error, "healthcheck", USAGE, out);
  }
  const target = healthTarget(settings);
  try {
    const status = await statusOf(target);
    if (status === 200) return 0;
    out.stderr.write(`turnout healthcheck: ${target.url} answered ${status}\n`);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    out.stderr.write(`turnout healthcheck: ${target.url}: ${message}\n`);
  }
  return 1;
}

interface HealthTarget {
  readonly https: boolean;
  readonly host: string;
  readonly port: number;
  readonly url: string;
}

/** Every interface includes loopback: ask there, as the probe runs beside the gateway. */
function healthTarget(settings: Settings): HealthTarget {
  const wildcard: Record<string, string> = { "0.0.0.0": "127.0.0.1", "::": "::1" };
  const host = wildcard[settings.host] ?? settings.host;
  const https = settings.tls !== undefined;
  const shown = host.includes(":") ? `[${host}]` : host;
  const url = `${https ? "https" : "http"}://${shown}:${settings.adminPort}/healthz`;
  return { https, host, port: settings.adminPort, url };
}

function statusOf(target: HealthTarget): Promise<number> {
  return new Promise((resolve, reject) => {
    const options = {
      host: target.host,
      port: target.port,
      path: "/healthz",
      timeout: TIMEOUT_MS,
      // The gateway's own certificate names its public host, not loopback:
      // this probe asks whether the process is alive, not who it is.
      rejectUnauthorized: false,
    };
    const req = (target.https ? httpsRequest : httpRequest)(options, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    req.on("error", reject);
    req.end();
  });
}
