/**
 * Scenarios "legacy-direct", "gateway-legacy" and "gateway-shadow": the legacy
 * HTTP/JSON service (bench/lib/legacy-app.ts), plain node:http, whose
 * `POST /v1/regions/:region/users` parses the JSON body and answers the user
 * record as the bench worker does.
 *
 *   node dist/bench/legacy-backend.js --port 8081 [--host 127.0.0.1]
 *
 * Prints "ready" once listening; on SIGTERM/SIGINT stops accepting and exits
 * (at most 2 s).
 */
import { parseArgs } from "node:util";
import { createLegacyServer } from "./lib/legacy-app.js";

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
  },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  process.stderr.write("legacy-backend: --port <1-65535> is required\n");
  process.exit(2);
}

const server = createLegacyServer();
await new Promise<void>((resolve, reject) => {
  server.once("error", reject);
  server.listen(port, values.host, () => resolve());
});
process.stdout.write("ready\n");

let stopping = false;
function stop(): void {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(0), 2000).unref();
  server.close(() => process.exit(0));
  server.closeIdleConnections();
}
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
