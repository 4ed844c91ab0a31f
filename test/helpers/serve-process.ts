/**
 * `turnout serve` as a real child process (from the sources, through tsx), with a
 * nats-server and a users.get worker for it to call: for the tests of process
 * behaviour (signals, drain, --workers).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type protobuf from "protobufjs";
import type { Test } from "tap";
import { loadProtos } from "../../src/codec/protos.js";
import { type NatsServer, startNatsServer } from "../../src/devtools/nats-server.js";
import type { Worker } from "../../src/worker/index.js";
import { usersGetRoute } from "./route-yaml.js";
import { usersGetWorker } from "./routes-and-workers.js";
import { PROTO_DIR, writeRoutes } from "./stack.js";

/** The route `startUsersGetWorker`'s worker serves, for `writeRoutes`. */
export const USERS_GET_ROUTE = usersGetRoute({ timeout: "5s" });

/** A nats-server with a worker answering `svc.users.*.get` with the requested id. */
export async function startUsersGetWorker(t: Test): Promise<NatsServer> {
  const server = await startNatsServer();
  t.teardown(() => server.stop());
  const nc = await connect({ servers: server.url });
  t.teardown(() => nc.close());
  const worker = startIdEchoWorker(nc, loadProtos([PROTO_DIR]));
  t.teardown(() => worker.stop());
  await nc.flush();
  return server;
}

/** A worker answering `svc.users.*.get` with a user holding just the requested id. */
export function startIdEchoWorker(nc: NatsConnection, root: protobuf.Root): Worker {
  return usersGetWorker(nc, root, (req: { id: string }) => ({ id: req.id }));
}

/** `serve` arguments for `USERS_GET_ROUTE` on `natsUrl`; port 0 lets the process pick. */
export function usersGetServeArgs(
  natsUrl: string,
  ports: { port: number; adminPort: number },
  config: string = writeRoutes(USERS_GET_ROUTE),
): string[] {
  return [
    "--config",
    config,
    "--nats-url",
    natsUrl,
    "--port",
    String(ports.port),
    "--admin-port",
    String(ports.adminPort),
  ];
}

/**
 * Runs `turnout serve` in a child process, stdout and stderr collected in
 * `output.text`; `env` adds to (or overrides) the test's environment.
 */
export function spawnServe(
  t: Test,
  args: string[],
  logLevel = "warn",
  env: NodeJS.ProcessEnv = {},
) {
  const gateway = spawn(
    process.execPath,
    ["--import", "tsx", "src/cli/main.ts", "serve", "--host", "127.0.0.1", ...args],
    {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, TURNOUT_LOG_LEVEL: logLevel, ...env },
    },
  );
  t.teardown(() => gateway.kill("SIGKILL"));
  const output = { text: "" };
  gateway.stdout.on("data", (chunk) => (output.text += chunk));
  gateway.stderr.on("data", (chunk) => (output.text += chunk));
  return { gateway, output };
}

/** Polls `condition` every 50 ms; throws when it does not hold within `ms`. */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  ms: number,
): Promise<void> {
  const until = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * The URLs from the process's `turnout: serving on URL, admin on URL` line, once
 * it is printed; fails with the output when it is not within `ms`.
 */
export async function servingUrls(
  output: { readonly text: string },
  ms: number,
): Promise<{ url: string; adminUrl: string }> {
  const line = () => /serving on (\S+), admin on (\S+)\n/.exec(output.text);
  await waitUntil(() => line() !== null, ms).catch(() => {
    throw new Error(`the gateway did not start listening; its output:\n${output.text}`);
  });
  const [, url, adminUrl] = line()!;
  return { url: url!, adminUrl: adminUrl! };
}

/** The exit code, or "still running" when the process has not exited within `ms`. */
export async function exitCode(child: ChildProcess, ms: number): Promise<number | string> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise((resolve) => {
    timer = setTimeout(() => resolve(["still running"]), ms);
  });
  const [code] = (await Promise.race([once(child, "exit"), late])) as [number | string];
  clearTimeout(timer);
  return code;
}
