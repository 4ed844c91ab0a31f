/**
 * What a scenario puts under load, and the figures one measured run yields.
 * `wrk` drives HTTP targets; `node` runs a load script of ours in its own process
 * (e.g. the raw NATS client), which prints one JSON `LoadResult` line at the end.
 */

import { benchScript, spawnNodeScript } from "./processes.js";
import type { HttpTarget } from "./wrk.js";
import { runWrk } from "./wrk.js";

export interface LoadResult {
  requests: number;
  durationS: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** Failed requests (non-2xx, socket errors, NATS errors); a run with any is not valid. */
  errors: number;
  errorDetail?: string | undefined;
}

export type LoadTarget =
  | ({ kind: "wrk" } & HttpTarget)
  | {
      kind: "node";
      /** Script relative to bench/, e.g. "lib/nats-client". */
      script: string;
      /** Arguments; the runner appends `--duration <s> --connections <n>`. */
      args: string[];
      /** What the report shows as the target. */
      describe: string;
    };

export interface LoadOptions {
  durationS: number;
  threads: number;
  connections: number;
  tmpDir: string;
  /** wrk targets only: each connection pauses this long (ms) before each request. */
  delayMs?: number | undefined;
}

export function describeTarget(target: LoadTarget): string {
  return target.kind === "wrk" ? `wrk ${target.method} ${target.url}` : target.describe;
}

/** One run of `durationS` seconds against `target`. */
export async function runLoad(target: LoadTarget, options: LoadOptions): Promise<LoadResult> {
  if (target.kind === "wrk") return runWrk(target, options);
  if (options.delayMs !== undefined) {
    throw new Error(`a paced load needs wrk; ${target.script} runs at full speed only`);
  }
  const child = await spawnNodeScript("load client", benchScript(target.script), [
    ...target.args,
    "--duration",
    String(options.durationS),
    "--connections",
    String(options.connections),
  ]);
  // "close", not "exit": the result line must have been read from its stdout.
  const closed = new Promise<void>((resolve) => child.process.once("close", () => resolve()));
  const deadline = (options.durationS + 30) * 1000;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    closed,
    new Promise<void>((resolve) => (timer = setTimeout(resolve, deadline))),
  ]);
  clearTimeout(timer);
  if (!child.exited()) {
    await child.stop();
    throw new Error(`load client ${target.script} overran ${deadline} ms:\n${child.log()}`);
  }
  const line = child
    .log()
    .split("\n")
    .reverse()
    .find((l) => l.startsWith("{"));
  if (child.process.exitCode !== 0 || line === undefined) {
    throw new Error(
      `load client ${target.script} failed (exit ${child.process.exitCode}):\n${child.log()}`,
    );
  }
  return JSON.parse(line) as LoadResult;
}
