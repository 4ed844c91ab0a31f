#!/usr/bin/env node
/**
 * `turnout` command line: dispatches to the subcommand's module. Each module
 * returns an exit code; only this file sets the exit code. The modules are
 * imported when their command runs: `serve` catches its stop signals before
 * loading the gateway (about half a second), so a stop meanwhile ends the
 * start cleanly (stop-signals.ts).
 */
import { onStopSignals } from "./stop-signals.js";

const USAGE = `usage: turnout <command> [options]

commands:
  serve   run the gateway            (--config, --nats-url, --port, --admin-port, --host, --workers)
  check   validate the route table   (--config)
  cutover list | set ROUTE --nats P [--shadow S] --reason TEXT | history ROUTE | rollback ROUTE
          read and change the live traffic split in NATS KV (--config, --nats-url)
  dlq     list | replay | delete [--route R] [--since T] [--limit N] [--after SEQ]
          list and re-drive the dead letters in JetStream TURNOUT_DLQ (--config, --nats-url)
  contract --samples FILE.jsonl [--concurrency N] [--json]
          replay recorded request/response pairs through the NATS path and
          report every difference; exit 1 on any (--config, --nats-url)
  healthcheck
          exit 0 when the local gateway's /healthz answers 200 (the serve
          flags and TURNOUT_* variables say where: admin port, host, HTTPS)

Every command reads --config (default ./routes.yaml, env TURNOUT_CONFIG) and
--nats-url (env TURNOUT_NATS_URL, comma-separated servers).`;

const io = { stdout: process.stdout, stderr: process.stderr };

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "serve": {
      const stop = onStopSignals(io);
      const { runServe } = await import("./serve.js");
      return runServe(rest, process.env, io, stop);
    }
    case "check":
      return (await import("./check.js")).runCheck(rest, io, process.env);
    case "cutover":
      return (await import("./cutover.js")).runCutover(rest, io, process.env);
    case "dlq":
      return (await import("./dlq.js")).runDlq(rest, io, process.env);
    case "contract":
      return (await import("./contract.js")).runContract(rest, io, process.env);
    case "healthcheck":
      return (await import("./healthcheck.js")).runHealthcheck(rest, process.env, io);
    case undefined:
      // A usage error like any other: on stderr, so nothing reading stdout takes it for output.
      io.stderr.write(`${USAGE}\n`);
      return 2;
    case "help":
    case "--help":
    case "-h":
      io.stdout.write(`${USAGE}\n`);
      return 0;
    default:
      io.stderr.write(`turnout: unknown command "${command}"\n\n${USAGE}\n`);
      return 2;
  }
}

/**
 * Once a command is done and its output handed to the OS, the process ends
 * even if a handle lingers: nats.js's close() can leave the socket of a
 * reconnect attempt open (a NATS server that is frozen), which kept a drained
 * `serve` running until it was SIGKILLed. Output to a pipe is written
 * asynchronously: the timer starts only once stdout and stderr have flushed,
 * so a slow reader (`| less`, ssh) still gets all of it. Unreferenced: a
 * process with nothing left exits at once, as before.
 */
const EXIT_AFTER_MS = 2000;

function finish(code: number): void {
  process.exitCode = code;
  const exitLater = () => setTimeout(() => process.exit(), EXIT_AFTER_MS).unref();
  process.stdout.write("", () => process.stderr.write("", exitLater));
}

main(process.argv.slice(2)).then(finish, (error: unknown) => {
  io.stderr.write(`turnout: ${error instanceof Error ? error.message : String(error)}\n`);
  finish(1);
});
