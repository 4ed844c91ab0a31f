/**
 * `turnout serve`: load and check the route table, start the gateway, and drain
 * on SIGTERM/SIGINT. Returns the process exit code (0 after a clean drain).
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { isAbsolute } from "node:path";
import type protobuf from "protobufjs";
import { natsSettingProblems } from "../backends/nats/connection.js";
import { loadConfigAndProtos } from "../config/load.js";
import { ConfigError, formatProblemLine } from "../errors.js";
import { joinClusterMetrics } from "../observability/cluster-metrics.js";
import { CREDENTIAL_HEADERS, headerPath } from "../observability/credential-headers.js";
import { cannotListen, startGateway } from "../server/start.js";
import type { Output } from "./check.js";
import {
  fileDigests,
  isClusterWorker,
  isReplacementWorker,
  leaveCluster,
  REPLACEMENT_NATS_WAIT_MS,
  superviseWorkers,
  workerTableProblem,
} from "./cluster.js";
import { reportCommandLine } from "./command-errors.js";
import { resolveSettings, type Settings } from "./settings.js";
import { onStopSignals, type StopRequest } from "./stop-signals.js";

/**
 * Never logged, whatever a line carries: client credentials and the gateway's
 * own switch token, cookies both ways, and the NATS auth secrets.
 */
export const LOG_REDACT = [
  ...CREDENTIAL_HEADERS.flatMap((name) => [
    headerPath("req.headers", name),
    headerPath("headers", name),
  ]),
  'res.headers["set-cookie"]',
  "authorization",
  "cookie",
  '["turnout-token"]',
  "nats.auth.token",
  "nats.auth.pass",
  "nats.auth.nkeySeed",
  "auth.token",
  "auth.pass",
  "auth.nkeySeed",
  "token",
  "pass",
  "nkeySeed",
];

/** The gateway's pino options: level and redaction (redacted values print as "[Redacted]"). */
export function loggerOptions(level: string): { level: string; redact: string[] } {
  return { level, redact: LOG_REDACT };
}

const USAGE = `usage: turnout serve [--config routes.yaml] [--nats-url nats://host:4222,...]
                     [--port 8080] [--admin-port 9090] [--host 0.0.0.0] [--workers N]
                     [--log-level info] [--tls-cert cert.pem --tls-key key.pem]
                     [--trust-proxy ADDRESSES|HOPS|true]
(env: TURNOUT_CONFIG, TURNOUT_NATS_URL, TURNOUT_PORT, ... as in the README)`;

/**
 * `stop`: the stop signals, caught since main.ts started (see stop-signals.ts);
 * caught from here on when not given.
 */
export async function runServe(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  out: Output,
  stop: StopRequest = onStopSignals(out),
): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    out.stdout.write(`${USAGE}\n`);
    return 0;
  }
  let gatewayStart: Awaited<ReturnType<typeof startGateway>>;
  // A --workers worker answers the primary's metrics rounds from the start (no-op otherwise).
  joinClusterMetrics();
  let settings: Settings;
  try {
    settings = resolveSettings(argv, env);
  } catch (error) {
    // A --workers worker leaves the primary's channel too, or it would never exit.
    leaveCluster();
    return reportCommandLine(error, "serve", USAGE, out);
  }
  try {
    throwIfTableChanged();
    // Validated in the primary too, so a bad table is reported once, not per worker.
    const { config, root } = loadConfigAndProtos(settings.configFile, {
      natsUrl: settings.natsUrl,
      // `check` leaves the secrets alone (CI has none); serving needs them now,
      // reported at their keys with the file's other problems.
      checkNats: (nats) => natsSettingProblems(nats, settings.configFile),
    });
    const table = tableFiles(config.file, root);
    // Read in the primary too, so an unusable pair is reported once, not per worker.
    const https = settings.tls === undefined ? undefined : readTlsPair(settings.tls);
    if (settings.workers > 1 && !isClusterWorker()) {
      // Else each worker would find the port taken and say so.
      await throwUnlessFree(settings.host, [settings.adminPort, settings.port]);
      if (await stoppedBeforeStart(stop, out)) return 0;
      out.stderr.write(`turnout: starting ${settings.workers} workers\n`);
      return superviseWorkers(settings.workers, { stop, table: fileDigests(table) }, out);
    }
    throwIfTableChanged(table);
    if (await stoppedBeforeStart(stop, out)) {
      leaveCluster();
      return 0;
    }
    gatewayStart = await startGateway({
      config,
      root,
      host: settings.host,
      port: settings.port,
      adminPort: settings.adminPort,
      logger: loggerOptions(settings.logLevel),
      adminToken: env.TURNOUT_ADMIN_TOKEN,
      trustProxy: settings.trustProxy,
      listener: { https },
      // Its siblings serve meanwhile: round-robin must not hand it requests it would answer 503.
      listenAfterNats: isReplacementWorker()
        ? { maxWaitMs: REPLACEMENT_NATS_WAIT_MS, abort: stop.aborted }
        : undefined,
    });
  } catch (error) {
    leaveCluster();
    if (!(error instanceof ConfigError)) {
      out.stderr.write(
        `turnout serve: ${error instanceof Error ? error.message : String(error)}; not starting\n`,
      );
      return 1;
    }
    for (const problem of error.problems) out.stderr.write(`${formatProblemLine(problem)}\n`);
    out.stderr.write(`turnout serve: ${error.problems.length} problem(s); not starting\n`);
    return 1;
  }
  const gateway = gatewayStart;
  out.stderr.write(`turnout: serving on ${gateway.url}, admin on ${gateway.adminUrl}\n`);

  // A signal while starting is answered here: the gateway drains once started.
  const signal = await stop.signal;
  out.stderr.write(`turnout: ${signal} received, draining\n`);
  await gateway.close();
  out.stderr.write("turnout: drained, bye\n");
  leaveCluster();
  return 0;
}

/**
 * True when a stop came before anything started: then nothing starts. The
 * load above is synchronous, so a signal that arrived meanwhile is still
 * queued until the event loop polls: the second of two immediates runs after
 * a poll (the first may run in the current loop turn, before any).
 */
async function stoppedBeforeStart(stop: StopRequest, out: Output): Promise<boolean> {
  for (let turn = 0; turn < 2; turn++) await new Promise((resolve) => setImmediate(resolve));
  const signal = stop.received();
  if (signal === undefined) return false;
  out.stderr.write(`turnout: ${signal} received before the gateway started; not starting\n`);
  return true;
}

/** In a --workers worker: refuses a route table other than the primary's (`workerTableProblem`). */
function throwIfTableChanged(files?: readonly string[]): void {
  const changed = workerTableProblem(files);
  if (changed !== undefined) throw new Error(changed);
}

/** TURNOUT_ERR_LISTEN, as the gateway's own start throws it, when a port cannot be had now. */
async function throwUnlessFree(host: string, ports: readonly number[]): Promise<void> {
  for (const port of ports) {
    if (port === 0) continue;
    const probe = createServer();
    try {
      await new Promise<void>((resolve, reject) => {
        probe.once("error", reject);
        probe.listen({ host, port, exclusive: true }, resolve);
      });
    } catch (error) {
      throw cannotListen(error);
    } finally {
      await new Promise((resolve) => probe.close(resolve));
    }
  }
}

/** What the route table was read from: routes.yaml and every .proto file compiled (imports too). */
function tableFiles(configFile: string, root: protobuf.Root): string[] {
  // protobufjs lists the google/protobuf/* types it bundles by bare name: not files.
  return [configFile, ...root.files.filter((file) => isAbsolute(file))];
}

/**
 * The PEM certificate and key, read and parsed before anything starts, so a
 * bad one is reported naming its file and flag (the TLS layer's own errors,
 * such as "PEM routines::no start line", name neither).
 */
function readTlsPair(tls: NonNullable<Settings["tls"]>): { cert: Buffer; key: Buffer } {
  const read = (file: string, flag: string, check: (pem: Buffer) => unknown): Buffer => {
    try {
      const pem = readFileSync(file);
      check(pem);
      return pem;
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new ConfigError([
        { location: file, key: flag, message: `not a usable PEM file: ${why}` },
      ]);
    }
  };
  return {
    cert: read(tls.certFile, "tls-cert", (pem) => new X509Certificate(pem)),
    key: read(tls.keyFile, "tls-key", (pem) => createPrivateKey(pem)),
  };
}
