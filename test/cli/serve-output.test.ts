/**
 * `serve` keeps stdout for pino's JSON lines, so a log shipper can parse every
 * line of it; its own status lines (serving on, draining, drained) go to stderr.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import t from "tap";
import { startUsersGetWorker, usersGetServeArgs, waitUntil } from "../helpers/serve-process.js";

t.test("serve writes only JSON log lines on stdout, its status lines on stderr", async (t) => {
  const server = await startUsersGetWorker(t);
  const args = usersGetServeArgs(server.url, { port: 0, adminPort: 0 });
  const gateway = spawn(
    process.execPath,
    ["--import", "tsx", "src/cli/main.ts", "serve", "--host", "127.0.0.1", ...args],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, TURNOUT_LOG_LEVEL: "info" } },
  );
  t.teardown(() => gateway.kill("SIGKILL"));
  let stdout = "";
  let stderr = "";
  gateway.stdout.on("data", (chunk) => (stdout += chunk));
  gateway.stderr.on("data", (chunk) => (stderr += chunk));
  const exited = once(gateway, "exit");
  const serving = /serving on (\S+), admin on (\S+)\n/;
  await waitUntil(() => serving.test(stderr), 30_000);
  const [, url, adminUrl] = serving.exec(stderr)!;
  // It listens before NATS connects: ready once it has.
  await waitUntil(async () => (await fetch(`${adminUrl}/readyz`)).status === 200, 10_000);
  t.equal((await fetch(`${url}/v1/regions/eu/users/u-1`)).status, 200);
  gateway.kill("SIGTERM");
  const [code] = await exited;
  t.equal(code, 0);
  t.match(stderr, /turnout: SIGTERM received, draining\n/);
  t.match(stderr, /turnout: drained, bye\n/);
  const lines = stdout.split("\n").filter((line) => line !== "");
  t.ok(lines.length > 0, "the request and NATS lines were logged");
  for (const line of lines) t.doesNotThrow(() => JSON.parse(line), line);
  t.ok(
    lines.some((line) => (JSON.parse(line) as { msg?: string }).msg === "request"),
    "the request's log line is among them",
  );
});
