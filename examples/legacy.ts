/**
 * The example legacy HTTP/JSON service: what the company ran before Turnout, the
 * upstreams routes.yaml names `users` (http://127.0.0.1:8081) and `orders`
 * (http://127.0.0.1:8082). One process serves both, over in-memory data seeded
 * from data.ts (its own copy: what one process creates, another does not see).
 * The routes and the one deliberate difference from the NATS worker are described
 * in legacy-server.ts.
 *
 *   node dist/examples/legacy.js [--users-port 8081] [--orders-port 8082] [--host 127.0.0.1]
 *
 * Prints "legacy ready on :8081 (users), :8082 (orders)" once both listen.
 * SIGTERM or SIGINT: stop accepting, finish the requests in progress, exit 0.
 */
import { parseArgs } from "node:util";
import { startLegacy } from "./legacy-server.js";

const USAGE =
  "usage: legacy [--users-port 8081] [--orders-port 8082] [--host 127.0.0.1] (ports 0-65535)";

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

function port(text: string | undefined, fallback: number, flag: string): number {
  if (text === undefined) return fallback;
  const n = /^\d{1,5}$/.test(text) ? Number(text) : Number.NaN;
  if (!(n <= 65535)) throw new Error(`--${flag} must be a port from 0 to 65535, got "${text}"`);
  return n;
}

async function main(): Promise<number> {
  let options: { usersPort: number; ordersPort: number; host: string };
  try {
    const { values } = parseArgs({
      options: {
        "users-port": { type: "string" },
        "orders-port": { type: "string" },
        host: { type: "string" },
      },
      strict: true,
      allowPositionals: false,
    });
    options = {
      usersPort: port(values["users-port"], 8081, "users-port"),
      ordersPort: port(values["orders-port"], 8082, "orders-port"),
      host: values.host ?? "127.0.0.1",
    };
  } catch (error) {
    console.error(`legacy: ${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
    return 2;
  }

  const legacy = await startLegacy(options);
  log(`legacy ready on :${legacy.usersPort} (users), :${legacy.ordersPort} (orders)`);

  const signal = await new Promise<string>((done) => {
    process.once("SIGTERM", () => done("SIGTERM"));
    process.once("SIGINT", () => done("SIGINT"));
  });
  log(`legacy: ${signal} received, stopping`);
  await legacy.close();
  log("legacy: stopped, bye");
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`legacy: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  },
);
