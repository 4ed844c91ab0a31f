/**
 * `--workers N`: N gateway processes (node:cluster) sharing both listening
 * ports. One Node process runs one event loop; several let the request path
 * of one process overlap with another's wait for NATS replies. The primary only
 * supervises: it forwards SIGTERM/SIGINT, waits for every worker's drain and
 * exits 0 when all drained cleanly. A worker that dies unexpectedly is
 * replaced (at most once a second). A signal to the whole process group (Ctrl-C,
 * systemd's KillMode=control-group) reaches each worker twice, directly and
 * forwarded: every process drains once and ignores the repeats
 * (`onStopSignals`). `/metrics` on the shared admin port
 * answers for all workers: the worker that gets the scrape asks the primary,
 * which gathers every worker's metrics (observability/cluster-metrics.ts).
 */
import cluster, { type Worker } from "node:cluster";
import { serveClusterMetrics } from "../observability/cluster-metrics.js";
import type { Output } from "./check.js";

const RESTART_PAUSE_MS = 1000;

const STOP_SIGNALS: readonly NodeJS.Signals[] = ["SIGTERM", "SIGINT"];

/**
 * Resolves with the first SIGTERM or SIGINT, which starts the process's one
 * drain. Later ones are logged and ignored rather than left to Node's default
 * (exit at once, killing the requests in flight): a second signal arrives
 * without anybody asking twice (a group signal under --workers, a wrapper
 * such as npm forwarding Ctrl-C). The drain is bounded by itself, and SIGKILL
 * still stops a process at once. The handlers stay until the process exits, so
 * a late signal cannot turn a clean exit into a kill either.
 */
export function onStopSignals(out: Output): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let first: NodeJS.Signals | undefined;
    const handler = (signal: NodeJS.Signals) => {
      if (first === undefined) {
        first = signal;
        resolve(signal);
        return;
      }
      out.stdout.write(`turnout: ${signal} received while stopping on ${first}; ignored\n`);
    };
    for (const signal of STOP_SIGNALS) process.on(signal, handler);
  });
}

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
    onStopSignals(out),
    startFailure.then((why) => {
      out.stderr.write(`turnout: ${why}; stopping every worker\n`);
      failed = true;
      return "SIGTERM" as const;
    }),
  ]);
  stopping = true;
  const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
  const exits = workers.map(exitOf);
  for (const worker of workers) worker.process.kill(signal);
  const unclean = (await Promise.all(exits)).filter((why) => why !== undefined);
  reportStop(workers.length, unclean, out);
  return failed || unclean.length > 0 ? 1 : 0;
}

/** Undefined for a worker that exited 0 (drained), else how it ended. */
function exitOf(worker: Worker): Promise<string | undefined> {
  return new Promise((resolve) =>
    worker.once("exit", (code: number | null, signal: NodeJS.Signals | null) =>
      resolve(code === 0 ? undefined : `worker ${worker.process.pid} exited (${signal ?? code})`),
    ),
  );
}

function reportStop(count: number, unclean: readonly string[], out: Output): void {
  if (unclean.length === 0) {
    out.stdout.write(`turnout: ${count} workers drained\n`);
    return;
  }
  const drained = count - unclean.length;
  out.stderr.write(`turnout: ${drained} of ${count} workers drained; ${unclean.join(", ")}\n`);
}
