/**
 * The processes a benchmark starts: spawned with their output kept (in a log
 * file, or for short-lived ones in memory; the last few KiB serve error
 * messages), stopped with SIGTERM then SIGKILL, and tracked
 * in one registry so that an error or Ctrl-C in the runner stops every one.
 * Every wait here has a deadline.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, fstatSync, openSync, readSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const LOG_LIMIT = 8192;

/** The repository root: the nearest folder above this file that holds package.json. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 10; i++) {
    if (existsSync(join(dir, "package.json"))) return dir;
    dir = dirname(dir);
  }
  throw new Error("bench: package.json not found above bench/lib");
}

/**
 * Path of a bench script given relative to the bench/ folder (e.g. "worker"), as
 * compiled next to this file: dist/bench/worker.js, or bench/worker.ts under tsx.
 */
export function benchScript(name: string): string {
  const self = fileURLToPath(import.meta.url);
  const ext = self.endsWith(".ts") ? ".ts" : ".js";
  return join(dirname(self), "..", `${name}${ext}`);
}

export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly process: ChildProcess;
  /** The last few KiB of the child's stdout and stderr. */
  log(): string;
  /** True once the process has exited. */
  exited(): boolean;
  /** SIGTERM, SIGKILL after `graceMs`, and resolves once it exited (at most ~2 s later). */
  stop(graceMs?: number): Promise<void>;
}

const running = new Set<ChildProcess>();

/** Registers a process started elsewhere (nats-server, wrk) for `killAllNow`. */
export function track(proc: ChildProcess): void {
  running.add(proc);
  proc.once("exit", () => running.delete(proc));
}

/** SIGKILLs every tracked process still running; synchronous, for `process.on("exit")`. */
export function killAllNow(): void {
  for (const proc of running) {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
  }
}

/**
 * Cleanups of one scenario, run in reverse order by `close()`, each bounded in
 * time; an error in one is reported and does not skip the others.
 */
export class Scope {
  #cleanups: { name: string; run: () => Promise<void> }[] = [];

  defer(name: string, run: () => Promise<void>): void {
    this.#cleanups.push({ name, run });
  }

  async close(timeoutMs = 8000): Promise<void> {
    const cleanups = this.#cleanups.reverse();
    this.#cleanups = [];
    for (const { name, run } of cleanups) {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          run(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`timed out after ${timeoutMs} ms`)),
              timeoutMs,
            );
          }),
        ]);
      } catch (err) {
        process.stderr.write(`bench: stopping ${name} failed: ${(err as Error).message}\n`);
      } finally {
        clearTimeout(timer);
      }
    }
  }
}

export interface SpawnOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /**
   * Write stdout and stderr to this file rather than through a pipe that this
   * process reads: a server that logs every request then costs the runner nothing.
   */
  logFile?: string;
}

/** Spawns `command` and tracks it for `killAllNow`; resolves once it is running. */
export async function spawnChild(
  name: string,
  command: string,
  args: readonly string[],
  options: SpawnOptions = {},
): Promise<Child> {
  const fd = options.logFile === undefined ? undefined : openSync(options.logFile, "a");
  const proc = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: fd === undefined ? ["ignore", "pipe", "pipe"] : ["ignore", fd, fd],
  });
  if (fd !== undefined) closeSync(fd); // the child holds its own copy
  let memoryLog = "";
  const append = (chunk: Buffer) => {
    memoryLog += chunk.toString();
    if (memoryLog.length > LOG_LIMIT * 2) memoryLog = memoryLog.slice(-LOG_LIMIT);
  };
  proc.stdout?.on("data", append);
  proc.stderr?.on("data", append);
  const log = () =>
    options.logFile === undefined ? memoryLog.slice(-LOG_LIMIT) : readTail(options.logFile);

  const spawned = new Promise<void>((resolve, reject) => {
    proc.once("spawn", () => resolve());
    proc.once("error", (err) =>
      reject(new Error(`${name}: cannot start ${command}: ${err.message}`)),
    );
  });
  const exit = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  const isExited = () => proc.exitCode !== null || proc.signalCode !== null;

  const child: Child = {
    name,
    get pid() {
      return proc.pid ?? -1;
    },
    process: proc,
    log,
    exited: isExited,
    async stop(graceMs = 3000) {
      if (!isExited()) {
        proc.kill("SIGTERM");
        const timer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
        await Promise.race([exit, delay(graceMs + 2000)]);
        clearTimeout(timer);
      }
    },
  };
  track(proc);
  await spawned;

  return child;
}

/** The last LOG_LIMIT bytes of `file`, or "" when it cannot be read. */
function readTail(file: string): string {
  let fd: number | undefined;
  try {
    fd = openSync(file, "r");
    const size = fstatSync(fd).size;
    const length = Math.min(size, LOG_LIMIT);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    return buffer.toString();
  } catch {
    return "";
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Starts a bench script (see `benchScript`) with the same Node and loader flags as the runner. */
export function spawnNodeScript(
  name: string,
  script: string,
  args: readonly string[],
  options: SpawnOptions = {},
): Promise<Child> {
  return spawnChild(name, process.execPath, [...process.execArgv, script, ...args], {
    cwd: repoRoot(),
    ...options,
  });
}

/** Resolves once `child` prints `line` alone on a line; rejects at the deadline or if it exits. */
export async function waitForLine(child: Child, line: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const printed = () =>
    child
      .log()
      .split("\n")
      .some((l) => l.trim() === line);
  while (Date.now() < deadline) {
    if (printed()) return;
    if (child.exited()) {
      const how = child.process.signalCode ?? `code ${child.process.exitCode}`;
      throw new Error(`${child.name} exited (${how}) before it was ready:\n${child.log()}`);
    }
    await delay(25);
  }
  if (printed()) return;
  throw new Error(`${child.name} did not print "${line}" within ${timeoutMs} ms:\n${child.log()}`);
}

export interface HttpProbe {
  url: string;
  method?: string;
  body?: string;
  headers?: Record<string, string>;
  /** Checks a 2xx answer's body: returns what is wrong with it, or undefined. */
  check?: (body: string) => string | undefined;
}

/**
 * Polls `probe` until it answers 2xx. Fails at the deadline, or at once when one
 * of `watch` exits, with the last answer or error and the children's logs.
 */
export async function waitForHttp(
  probe: HttpProbe,
  watch: readonly Child[] = [],
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no attempt";
  while (Date.now() < deadline) {
    const dead = watch.find((c) => c.exited());
    if (dead !== undefined) {
      const how = dead.process.signalCode ?? `code ${dead.process.exitCode}`;
      throw new Error(`${dead.name} exited (${how}) before ${probe.url} answered:\n${dead.log()}`);
    }
    try {
      const res = await fetch(probe.url, {
        method: probe.method ?? "GET",
        body: probe.body,
        headers: probe.headers,
        signal: AbortSignal.timeout(1000),
      });
      const text = await res.text();
      if (res.ok) {
        const problem = probe.check?.(text);
        if (problem === undefined) return;
        throw new ProbeError(
          `${probe.url} answered ${res.status} but ${problem}: ${text.slice(0, 300)}`,
        );
      }
      last = `HTTP ${res.status}: ${text.slice(0, 300)}`;
    } catch (err) {
      if (err instanceof ProbeError) throw err;
      last = (err as Error).message;
    }
    await delay(100);
  }
  const logs = watch.map((c) => `--- ${c.name}:\n${c.log()}`).join("\n");
  throw new Error(`${probe.url} not ready within ${timeoutMs} ms (last: ${last})\n${logs}`);
}

/** A wrong answer: retrying will not fix it. */
class ProbeError extends Error {}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
