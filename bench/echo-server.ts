/**
 * Scenario "fastify-echo": a plain Fastify server whose POST /echo parses the
 * JSON body and answers it. No route of the gateway can beat it, as each does at
 * least this much work per request, so it is the ceiling the others are
 * compared with.
 *
 *   node dist/bench/echo-server.js --port 8080 [--host 127.0.0.1]
 */
import { parseArgs } from "node:util";
import Fastify from "fastify";

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
  },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  process.stderr.write("echo-server: --port <1-65535> is required\n");
  process.exit(2);
}

const app = Fastify({ logger: false });
app.post("/echo", async (request) => request.body);
await app.listen({ port, host: values.host });
process.stdout.write("ready\n");

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  const timer = setTimeout(() => process.exit(0), 2000);
  await app.close().catch(() => undefined);
  clearTimeout(timer);
  process.exit(0);
}
process.once("SIGTERM", () => void stop());
process.once("SIGINT", () => void stop());
