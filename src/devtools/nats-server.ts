/**
 * Starts a real nats-server (the Debian package, found on PATH) on loopback for
 * the demo, the benchmarks and the tests. Not used by the gateway itself.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const NATS_INSTALL_HINT =
  "nats-server was not found on PATH. Install it with: sudo apt-get install -y nats-server";

export interface NatsServerOptions {
  /** Client port; a free one when omitted. Reuse it to restart on the same port. */
  port?: number;
  /** Enable JetStream with a store directory of its own. */
  jetstream?: boolean;
  /** Extra command-line arguments (TLS, auth, cluster...). */
  args?: string[];
  /** Reuse this JetStream store directory (e.g. across a restart). */
  storeDir?: string;
}

export interface NatsServer {
  readonly port: number;
  readonly url: string;
  readonly storeDir: string | undefined;
  readonly process: ChildProcess;
  /** Stops the server (SIGTERM, then SIGKILL after 3 s) and waits for its exit. */
  stop(): Promise<void>;
}

export function natsServerAvailable(): boolean {
  return spawnSync("nats-server", ["--version"], { stdio: "ignore" }).status === 0;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** `count` distinct free ports: freePort alone may hand the same one out twice in a row. */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

/** Two distinct free ports: a listener's and its admin listener's. */
export async function freePortPair(): Promise<[number, number]> {
  const [first = 0, second = 0] = await freePorts(2);
  return [first, second];
}

export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  if (!natsServerAvailable()) throw new Error(NATS_INSTALL_HINT);
  const port = options.port ?? (await freePort());
  const ownStore = options.jetstream === true && options.storeDir === undefined;
  const storeDir = options.jetstream
    ? (options.storeDir ?? mkdtempSync(join(tmpdir(), "turnout-js-")))
    : undefined;
  const args = ["-a", "127.0.0.1", "-p", String(port), ...(options.args ?? [])];
  if (storeDir !== undefined) args.push("-js", "-sd", storeDir);

  const child = spawn("nats-server", args, { stdio: ["ignore", "ignore", "pipe"] });
  killedOnExit(child);
  await waitForReady(child, port);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  return {
    port,
    url: `nats://127.0.0.1:${port}`,
    storeDir,
    process: child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
        await exited;
        clearTimeout(timer);
      }
      if (ownStore && storeDir !== undefined) rmSync(storeDir, { recursive: true, force: true });
    },
  };
}

/** The servers started here and still running, for the exit handler below. */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/**
 * A process that ends without stopping its servers (a test file that throws
 * at import, an uncaught error) kills them as it exits, rather than leave
 * them running, parented to init, with their ports and store folders.
 */
function killedOnExit(child: ChildProcess): void {
  if (!exitHookInstalled) process.once("exit", killRunning);
  exitHookInstalled = true;
  running.add(child);
  child.once("exit", () => running.delete(child));
}

function killRunning(): void {
  for (const child of running) child.kill("SIGKILL");
}

/** Resolves once the server logs that it accepts clients; rejects if it exits first. */
function waitForReady(child: ChildProcess, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let log = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`nats-server on port ${port} did not start within 10 s:\n${log}`));
    }, 10_000);
    const onData = (chunk: Buffer) => {
      log += chunk.toString();
      if (log.includes("Server is ready")) {
        clearTimeout(timer);
        child.stderr?.off("data", onData);
        child.stderr?.resume(); // keep draining so the server never blocks on a full pipe
        resolve();
      }
    };
    child.stderr?.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited with code ${code} before it was ready:\n${log}`));
    });
  });
}
