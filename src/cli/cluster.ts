/**
 * `--workers N`: N gateway processes (node:cluster) sharing both listening
 * ports. One Node process runs one event loop; several let the request path
 * of one process overlap with another's wait for NATS replies. The primary only
 * supervises: it forwards SIGTERM/SIGINT, waits for every worker's drain and
 * exits 0 when all drained cleanly. A worker that dies unexpectedly is
 * replaced (at most once a second). `/metrics` on the shared admin port
 * answers for all workers: the worker that gets the scrape asks the primary,
 * which gathers every worker's metrics (observability/cluster-metrics.ts).
 */
import cluster, { type Worker } from "node:cluster";
import { serveClusterMetrics } from "../observability/cluster-metrics.js";
import type { Output } from "./check.js";

const RESTART_PAUSE_MS = 1000;

export function isClusterWorker(): boolean {
  return cluster.isWorker;
}

/** After a worker's drain: the IPC channel to the primary would keep it alive. */
export function leaveCluster(): void {
  cluster.worker?.disconnect();
}

export async function superviseWorkers(count: number, out: Output): Promise<number> {
  let stopping = false;
  let failed = false;
  serveClusterMetrics();
  const fork = (): Worker => cluster.fork();
  for (let i = 0; i < count; i++) fork();

  // A worker is up once both its listeners are; one that dies before cannot
  // start (a busy port, an unreadable certificate), and neither could its
  // replacement: then every worker stops and the command fails.
  const listeners = new Map<number, number>();
  cluster.on("listening", (worker) =>
    listeners.set(worker.id, (listeners.get(worker.id) ?? 0) + 1),
  );
  let startFailed: (why: string) => void = () => {};
  const startFailure = new Promise<string>((resolve) => (startFailed = resolve));
  cluster.on("exit", (worker, code, signal) => {
    if (stopping) {
      if (code !== 0) failed = true;
      return;
    }
    const how = signal ?? code;
    if ((listeners.get(worker.id) ?? 0) < 2) {
      startFailed(`worker ${worker.process.pid} exited (${how}) before it was listening`);
      return;
    }
    out.stderr.write(`turnout: worker ${worker.process.pid} exited (${how}); replacing it\n`);
    setTimeout(() => {
      if (!stopping) fork();
    }, RESTART_PAUSE_MS).unref();
  });

  const signal = await Promise.race([
    new Promise<NodeJS.Signals>((resolve) => {
      process.once("SIGTERM", () => resolve("SIGTERM"));
      process.once("SIGINT", () => resolve("SIGINT"));
    }),
    startFailure.then((why) => {
      out.stderr.write(`turnout: ${why}; stopping every worker\n`);
      failed = true;
      return "SIGTERM" as const;
    }),
  ]);
  stopping = true;
  const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
  const exits = workers.map((w) => new Promise<void>((resolve) => w.once("exit", () => resolve())));
  for (const worker of workers) worker.process.kill(signal);
  await Promise.all(exits);
  out.stdout.write(`turnout: ${workers.length} workers drained\n`);
  return failed ? 1 : 0;
}
