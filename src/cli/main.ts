#!/usr/bin/env node
/**
 * `turnout` command line: dispatches to the subcommand's module. Each module
 * returns an exit code; only this file calls process.exit.
 */
import { runCheck } from "./check.js";
import { runContract } from "./contract.js";
import { runCutover } from "./cutover.js";
import { runDlq } from "./dlq.js";
import { runServe } from "./serve.js";

const USAGE = `usage: turnout <command> [options]

commands:
  serve   run the gateway            (--config, --nats-url, --port, --admin-port, --host, --workers)
  check   validate the route table   (--config)
  cutover list | set ROUTE --nats P [--shadow S] --reason TEXT | history ROUTE | rollback ROUTE
          read and change the live traffic split in NATS KV (--config, --nats-url)
  dlq     list | replay | delete [--route R] [--since T] [--after SEQ]
          list and re-drive the dead letters in JetStream TURNOUT_DLQ (--config, --nats-url)
  contract --samples FILE.jsonl [--concurrency N] [--json]
          replay recorded request/response pairs through the NATS path and
          report every difference; exit 1 on any (--config, --nats-url)

Every command reads --config (default ./routes.yaml, env TURNOUT_CONFIG) and
--nats-url (env TURNOUT_NATS_URL, comma-separated servers).`;

const io = { stdout: process.stdout, stderr: process.stderr };

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "serve":
      return runServe(rest, process.env, io);
    case "check":
      return runCheck(rest, io, process.env);
    case "cutover":
      return runCutover(rest, io, process.env);
    case "dlq":
      return runDlq(rest, io, process.env);
    case "contract":
      return runContract(rest, io, process.env);
    case undefined:
    case "help":
    case "--help":
    case "-h":
      io.stdout.write(`${USAGE}\n`);
      return command === undefined ? 2 : 0;
    default:
      io.stderr.write(`turnout: unknown command "${command}"\n\n${USAGE}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    io.stderr.write(`turnout: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
