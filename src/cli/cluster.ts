/**
 * `--workers N`: N gateway processes (node:cluster) sharing both listening
 * ports. One Node process runs one event loop; several let the request path
 * of one process overlap with another's wait for NATS replies. The primary only
 * supervises: it forwards SIGTERM/SIGINT, waits for every worker's drain and
 * exits 0 when all drained cleanly. A signal to the whole process group (Ctrl-C,
 * systemd's KillMode=control-group) reaches each worker twice, directly and
 * forwarded: every process drains once and ignores the repeats
 * (`onStopSignals`, stop-signals.ts). `/metrics` on the shared admin port
 * answers for all workers: the worker that gets the scrape asks the primary,
 * which gathers every worker's metrics (observability/cluster-metrics.ts).
 *
 * Once every first worker listens, a worker that dies is replaced; a
 * replacement that cannot start is retried with a growing pause while the
 * others keep serving. Every worker serves the route table the primary loaded
 * (`workerTableProblem`), and a replacement takes its share of the shared
 * ports only once connected to NATS (`isReplacementWorker`).
 */
import cluster, { type Worker } from "node:cluster";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { serveClusterMetrics } from "../observability/cluster-metrics.js";
import type { Output } from "./check.js";
import { STOP_SIGNALS, type StopRequest } from "./stop-signals.js";

/** The pause before replacing a worker that died, and the first retry's after a failed one. */
const RESTART_PAUSE_MS = 1000;
/** Failed replacements wait twice as long each time, up to this. */
const RETRY_PAUSE_MAX_MS = 30_000;
/**
 * A worker that dies sooner after it started serving is in a crash loop (a
 * bug hit by every request, a poison message): its replacements wait twice as
 * long each time too, instead of dying every second or so.
 */
const STABLE_UP_MS = 30_000;
/** How long a replacement keeps its public listener closed while NATS does not connect. */
export const REPLACEMENT_NATS_WAIT_MS = 30_000;

/** The primary's file digests (`fileDigests`), JSON, for every worker. */
const TABLE_ENV = "TURNOUT_WORKER_TABLE";
/** Set for a worker forked to replace one that died: its siblings are serving. */
const REPLACEMENT_ENV = "TURNOUT_WORKER_REPLACEMENT";

export function isClusterWorker(): boolean {
  return cluster.isWorker;
}

/** A worker forked after another died: it must not take requests it cannot serve yet. */
export function isReplacementWorker(): boolean {
  return cluster.isWorker && process.env[REPLACEMENT_ENV] === "1";
}

/** After a worker's drain: the IPC channel to the primary would keep it alive. */
export function leaveCluster(): void {
  cluster.worker?.disconnect();
}

/** Each file's content hash by absolute path: what the primary loaded, to compare against. */
export function fileDigests(files: readonly string[]): Record<string, string> {
  const digests: Record<string, string> = {};
  for (const file of files) digests[file] = digestOf(file);
  return digests;
}

function digestOf(file: string): string {
  try {
    // 16 hex digits tell an edit apart and keep the env var short with many protos.
    return createHash("sha256").update(readFileSync(file)).digest("hex").slice(0, 16);
  } catch {
    return "unreadable";
  }
}

/**
 * In a worker, why the route table it reads is not the one the primary
 * loaded, naming each file that differs; undefined when it is (or outside
 * --workers). `files`: routes.yaml and the protos as this worker loaded them;
 * without, the primary's files alone are compared (before loading, so an edit
 * that broke the file is named as such). A replacement re-reads the files long
 * after the start: serving an edit would make it answer differently from its
 * siblings, and an edit nobody validated could keep it from starting at all.
 */
export function workerTableProblem(files?: readonly string[]): string | undefined {
  const json = cluster.isWorker ? process.env[TABLE_ENV] : undefined;
  if (json === undefined) return undefined;
  const expected = JSON.parse(json) as Record<string, string>;
  const read = files ?? Object.keys(expected);
  const actual = fileDigests(read);
  const changed = [...new Set([...Object.keys(expected), ...read])]
    .filter((file) => expected[file] !== actual[file])
    .map((file) => `${file} (${changeOf(expected[file], actual[file])})`);
  if (changed.length === 0) return undefined;
  return `changed since turnout started: ${changed.join(", ")}; every worker serves the route table turnout started with: check the change (turnout check) and restart turnout to load it`;
}

function changeOf(expected: string | undefined, actual: string | undefined): string {
  if (expected === undefined) return "added";
  if (actual === undefined || actual === "unreadable") return "removed or unreadable";
  return "edited";
}

/**
 * Runs `count` workers until `stop`; resolves with the exit code. `table` is
 * what the primary loaded (`fileDigests`), handed to every worker.
 */
export async function superviseWorkers(
  count: number,
  start: { readonly stop: StopRequest; readonly table: Record<string, string> },
  out: Output,
): Promise<number> {
  serveClusterMetrics();
  const supervisor = new Supervisor(count, { [TABLE_ENV]: JSON.stringify(start.table) }, out);
  const signal = await Promise.race([
    start.stop.signal,
    supervisor.startFailure.then((why) => {
      out.stderr.write(`turnout: ${why}; stopping every worker\n`);
      return "SIGTERM" as const;
    }),
  ]);
  return supervisor.stop(signal);
}

/**
 * The workers' lifecycle. Until the first `count` workers all listen, one that
 * dies before listening fails the command: a busy port or an unreadable
 * certificate stops every worker alike. Afterwards a worker that dies is
 * replaced, and a replacement that cannot start (routes.yaml edited since)
 * is logged and retried with a growing pause: the others keep serving.
 */
class Supervisor {
  readonly startFailure: Promise<string>;
  #startFailed: (why: string) => void = () => {};
  #stopping = false;
  #failed = false;
  /** Once the first `count` workers all listened. */
  #started = false;
  /** Listeners up per worker id: a worker serves once it has both. */
  readonly #listens = new Map<number, number>();
  /** Live workers with both listeners up, and since when. */
  readonly #upSince = new Map<number, number>();
  #retryPauseMs = RESTART_PAUSE_MS;
  /** A replacement failed: the next worker to come up says it serves again. */
  #announceNextUp = false;
  readonly #pending = new Set<NodeJS.Timeout>();

  constructor(
    readonly count: number,
    readonly env: Record<string, string>,
    readonly out: Output,
  ) {
    this.startFailure = new Promise<string>((resolve) => (this.#startFailed = resolve));
    cluster.on("listening", (worker) => this.#listening(worker));
    cluster.on("exit", (worker, code, signal) => this.#exited(worker, code, signal));
    for (let i = 0; i < count; i++) cluster.fork(env);
  }

  #listening(worker: Worker): void {
    const listens = (this.#listens.get(worker.id) ?? 0) + 1;
    this.#listens.set(worker.id, listens);
    if (listens < 2) return;
    this.#upSince.set(worker.id, Date.now());
    if (this.#upSince.size >= this.count) this.#started = true;
    if (this.#announceNextUp) {
      this.out.stderr.write(`turnout: worker ${worker.process.pid} is serving again\n`);
      this.#announceNextUp = false;
    }
  }

  #exited(worker: Worker, code: number, signal: string): void {
    const upSince = this.#upSince.get(worker.id);
    this.#upSince.delete(worker.id);
    if (this.#stopping) {
      if (!this.#stoppedCleanly(worker, code, signal)) this.#failed = true;
      return;
    }
    const how = `${worker.process.pid} exited (${signal ?? code})`;
    if (upSince !== undefined) {
      this.#replaceDied(how, Date.now() - upSince);
    } else if (!this.#started) {
      // The command failed, however cleanly the other workers then stop; unless
      // a stop signal ended it (a group signal reaches the workers before or
      // after the primary): then every worker is stopped, cleanly.
      if (!STOP_SIGNALS.some((s) => s === signal)) this.#failed = true;
      this.#startFailed(`worker ${how} before it was listening`);
    } else {
      const pause = this.#nextRetryPause();
      this.#announceNextUp = true;
      this.out.stderr.write(
        `turnout: REPLACEMENT WORKER FAILED: worker ${how} before it was listening (its output above says why); ${this.#upSince.size} of ${this.count} workers serving; retrying in ${pause / 1000} s\n`,
      );
      this.#replaceIn(pause);
    }
  }

  /** A worker that served died: replaced at once after a stable run, later and later in a crash loop. */
  #replaceDied(how: string, upForMs: number): void {
    if (upForMs >= STABLE_UP_MS) {
      this.#retryPauseMs = RESTART_PAUSE_MS;
      this.out.stderr.write(`turnout: worker ${how}; replacing it\n`);
      this.#replaceIn(RESTART_PAUSE_MS);
      return;
    }
    const pause = this.#nextRetryPause();
    const upFor = (upForMs / 1000).toFixed(1);
    this.out.stderr.write(
      `turnout: worker ${how} ${upFor} s after it started serving; replacing it in ${pause / 1000} s (the pause doubles while workers die within ${STABLE_UP_MS / 1000} s)\n`,
    );
    this.#replaceIn(pause);
  }

  /** The pause before the next retry; the one after it doubles. */
  #nextRetryPause(): number {
    const pause = this.#retryPauseMs;
    this.#retryPauseMs = Math.min(pause * 2, RETRY_PAUSE_MAX_MS);
    return pause;
  }

  /** Not unref'd: with every worker gone, the pending retry is what keeps turnout up. */
  #replaceIn(ms: number): void {
    const timer = setTimeout(() => {
      this.#pending.delete(timer);
      if (!this.#stopping) cluster.fork({ ...this.env, [REPLACEMENT_ENV]: "1" });
    }, ms);
    this.#pending.add(timer);
  }

  /** Forwards `signal` to every worker and waits for all; 0 when each stopped cleanly. */
  async stop(signal: NodeJS.Signals): Promise<number> {
    this.#stopping = true;
    for (const timer of this.#pending) clearTimeout(timer);
    const workers = Object.values(cluster.workers ?? {}).filter(
      (w): w is Worker => w !== undefined,
    );
    const exits = workers.map((worker) => this.#exitOf(worker));
    for (const worker of workers) worker.process.kill(signal);
    const unclean = (await Promise.all(exits)).filter((why) => why !== undefined);
    reportStop(workers.length, unclean, this.out);
    return this.#failed || unclean.length > 0 ? 1 : 0;
  }

  /** Undefined for a worker that stopped cleanly, else how it ended. */
  #exitOf(worker: Worker): Promise<string | undefined> {
    return new Promise((resolve) =>
      worker.once("exit", (code: number | null, signal: NodeJS.Signals | null) =>
        resolve(
          this.#stoppedCleanly(worker, code, signal)
            ? undefined
            : `worker ${worker.process.pid} exited (${signal ?? code})`,
        ),
      ),
    );
  }

  /**
   * Exit 0 (drained, or stopped before its gateway started), or killed by the
   * stop signal before it listened at all: a worker still loading its modules
   * cannot catch the signal yet, and had nothing to drain.
   */
  #stoppedCleanly(worker: Worker, code: number | null, signal: string | null): boolean {
    if (code === 0) return true;
    const stopSignal = STOP_SIGNALS.some((s) => s === signal);
    return stopSignal && !this.#listens.has(worker.id);
  }
}

function reportStop(count: number, unclean: readonly string[], out: Output): void {
  if (unclean.length === 0) {
    out.stderr.write(`turnout: ${count} workers drained\n`);
    return;
  }
  const drained = count - unclean.length;
  out.stderr.write(`turnout: ${drained} of ${count} workers drained; ${unclean.join(", ")}\n`);
}
