/**
 * The demo's child processes: output passed through line by line with a prefix,
 * and a stop that asks politely (SIGTERM) before it insists (SIGKILL).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { createInterface } from "node:readline";

export interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  /** Resolves with how it ended, whenever that is. */
  readonly exited: Promise<string>;
  /** Called with each line of its stdout (after it was printed). */
  onLine(listener: (line: string) => void): void;
  isRunning(): boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with how it ended. */
  stop(graceMs: number): Promise<string>;
}

export function say(line: string): void {
  process.stdout.write(`[demo] ${line}\n`);
}

export function startChild(
  name: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv },
): Child {
  const child = spawn(process.execPath, args, {
    cwd: options.cwd,
    env: options.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const listeners: Array<(line: string) => void> = [];
  const prefix = `[${name}] `;
  createInterface({ input: child.stdout!, crlfDelay: Number.POSITIVE_INFINITY }).on(
    "line",
    (line) => {
      process.stdout.write(`${prefix}${line}\n`);
      for (const listener of listeners) listener(line);
    },
  );
  createInterface({ input: child.stderr!, crlfDelay: Number.POSITIVE_INFINITY }).on(
    "line",
    (line) => process.stderr.write(`${prefix}${line}\n`),
  );
  const exited = new Promise<string>((resolve) => {
    child.once("error", (error) => resolve(`could not start: ${error.message}`));
    child.once("exit", (code, signal) =>
      resolve(signal === null ? `exit code ${code}` : `killed by ${signal}`),
    );
  });
  const isRunning = () => child.exitCode === null && child.signalCode === null;

  return {
    name,
    process: child,
    exited,
    onLine: (listener) => listeners.push(listener),
    isRunning,
    async stop(graceMs) {
      if (isRunning()) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => {
          say(`${name} did not stop within ${graceMs / 1000} s: killing it`);
          child.kill("SIGKILL");
        }, graceMs);
        await exited;
        clearTimeout(timer);
      }
      return exited;
    },
  };
}

/**
 * The first line of the child's stdout matching `pattern` (from now on); rejects
 * when the child ends first or nothing matched within `withinMs`.
 */
export function firstLine(
  child: Child,
  pattern: RegExp,
  withinMs: number,
): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      done = true;
      reject(new Error(`${child.name} did not print its ready line within ${withinMs / 1000} s`));
    }, withinMs);
    child.onLine((line) => {
      const match = done ? null : pattern.exec(line);
      if (match === null) return;
      done = true;
      clearTimeout(timer);
      resolve(match);
    });
    void child.exited.then((how) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(new Error(`${child.name} ended before it was ready (${how}); its output is above`));
    });
  });
}

/** Whether nothing listens on 127.0.0.1:port (so the gateway can). */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen({ port, host: "127.0.0.1", exclusive: true }, () =>
      server.close(() => resolve(true)),
    );
  });
}
