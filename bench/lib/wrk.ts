/**
 * wrk (the Debian package) as the HTTP load generator: the Lua script that sets
 * the request, the run itself, and the parser of its `--latency` report.
 */
import { spawn, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LoadResult } from "./load.js";
import { track } from "./processes.js";

export const WRK_INSTALL_HINT = "install it with: sudo apt-get install -y wrk";

export function wrkAvailable(): boolean {
  const out = spawnSync("wrk", ["-v"], { stdio: "ignore", timeout: 5000 });
  return out.error === undefined;
}

/** wrk's version line, e.g. "wrk debian/4.1.0-3+b2 [epoll]", for the results file. */
export function wrkVersion(): string {
  const out = spawnSync("wrk", ["-v"], { encoding: "utf8", timeout: 5000 });
  return (
    (out.stdout ?? "")
      .split("\n")[0]
      ?.replace(/ Copyright.*$/, "")
      .trim() ?? ""
  );
}

export interface HttpTarget {
  method: string;
  url: string;
  body?: string;
  headers?: Record<string, string>;
}

/**
 * `text` as a double-quoted Lua string literal: printable ASCII as is (minus `"`
 * and `\\`), every other byte of its UTF-8 as a decimal `\\ddd` escape.
 */
export function luaString(text: string): string {
  let out = '"';
  for (const byte of Buffer.from(text, "utf8")) {
    const printable = byte >= 0x20 && byte < 0x7f && byte !== 0x22 && byte !== 0x5c;
    out += printable ? String.fromCharCode(byte) : `\\${String(byte).padStart(3, "0")}`;
  }
  return `${out}"`;
}

/** The wrk Lua script that sends `target`'s method, headers and body on every request. */
export function wrkScript(target: HttpTarget, delayMs?: number): string {
  const lines = [`wrk.method = ${luaString(target.method)}`];
  if (target.body !== undefined) lines.push(`wrk.body = ${luaString(target.body)}`);
  for (const [name, value] of Object.entries(target.headers ?? {})) {
    lines.push(`wrk.headers[${luaString(name)}] = ${luaString(value)}`);
  }
  // wrk calls delay() before each request of a connection (whole ms). Drawn at
  // random around the mean: equal pauses line the connections up into bursts,
  // one request from each, which a gateway answers as one batch, at a latency
  // that no steady load of the same rate sees.
  if (delayMs !== undefined) {
    lines.push(`function delay()\n  return math.random(0, ${2 * delayMs})\nend`);
  }
  return `${lines.join("\n")}\n`;
}

/**
 * The mean pause per connection (wrk's delay(), whole ms, at least 1) that paces
 * `connections` connections to about `fraction` of `maxRps`. A connection's
 * cycle is its pause plus the answer's latency (`latencyMs`, measured at about
 * that rate), so the pause is what remains of the cycle the rate asks for.
 */
export function pacingDelayMs(
  maxRps: number,
  connections: number,
  fraction: number,
  latencyMs = 0,
): number {
  return Math.max(1, Math.round((connections * 1000) / (maxRps * fraction) - latencyMs));
}

/** Milliseconds in one of wrk's time figures: "812.00us", "1.50ms", "2.01s", "1.00m", "2h". */
export function parseWrkTime(text: string): number {
  const match = /^([\d.]+)(us|ms|s|m|h)$/.exec(text.trim());
  if (match === null) throw new Error(`not a wrk time: "${text}"`);
  const value = Number(match[1]);
  const unit = match[2] as "us" | "ms" | "s" | "m" | "h";
  const factor = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit];
  // Rounded to the microsecond, wrk's resolution, so "2.01s" is 2010, not 2009.9999999999998.
  return Math.round(value * factor * 1000) / 1000;
}

export interface WrkReport {
  requests: number;
  durationS: number;
  rps: number;
  /** Percentile -> latency in ms, from the "Latency Distribution" block. */
  latencyMs: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
}

/** Parses wrk's report (run with `--latency`); throws on a report without those figures. */
export function parseWrkOutput(output: string): WrkReport {
  const latencyMs: Record<string, number> = {};
  const dist = output.indexOf("Latency Distribution");
  if (dist < 0)
    throw new Error(`wrk report has no "Latency Distribution" (run with --latency):\n${output}`);
  for (const line of output.slice(dist).split("\n").slice(1)) {
    const match = /^\s*([\d.]+)%\s+(\S+)\s*$/.exec(line);
    if (match === null) break;
    latencyMs[match[1]!] = parseWrkTime(match[2]!);
  }
  const total = /(\d+) requests in ([\d.]+\w+),/.exec(output);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(output);
  const p50 = latencyMs["50"];
  const p99 = latencyMs["99"];
  if (total === null || rps === null || p50 === undefined || p99 === undefined) {
    throw new Error(`cannot read requests, req/s, p50 and p99 from wrk's report:\n${output}`);
  }
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(
    output,
  );
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(output);
  return {
    requests: Number(total[1]),
    durationS: parseWrkTime(total[2]!) / 1000,
    rps: Number(rps[1]),
    latencyMs,
    p50Ms: p50,
    p99Ms: p99,
    non2xx: non2xx === null ? 0 : Number(non2xx[1]),
    socketErrors: {
      connect: Number(socket?.[1] ?? 0),
      read: Number(socket?.[2] ?? 0),
      write: Number(socket?.[3] ?? 0),
      timeout: Number(socket?.[4] ?? 0),
    },
  };
}

export interface WrkOptions {
  durationS: number;
  threads: number;
  connections: number;
  /** Folder for the Lua script. */
  tmpDir: string;
  /** Each connection pauses this long (whole ms) before each request: a paced, lighter load. */
  delayMs?: number | undefined;
}

/** Runs wrk against `target`; killed if it overruns its duration by 30 s. */
export async function runWrk(target: HttpTarget, options: WrkOptions): Promise<LoadResult> {
  const script = join(options.tmpDir, "wrk-request.lua");
  writeFileSync(script, wrkScript(target, options.delayMs));
  const args = [
    `-t${options.threads}`,
    `-c${options.connections}`,
    `-d${options.durationS}s`,
    "--latency",
    "-s",
    script,
    target.url,
  ];
  const proc = spawn("wrk", args, { stdio: ["ignore", "pipe", "pipe"] });
  track(proc);
  let out = "";
  proc.stdout.on("data", (chunk: Buffer) => {
    out += chunk.toString();
  });
  proc.stderr.on("data", (chunk: Buffer) => {
    out += chunk.toString();
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), (options.durationS + 30) * 1000);
  const code = await new Promise<number | null>((resolve, reject) => {
    proc.once("error", reject);
    proc.once("close", (c, signal) => resolve(signal === null ? c : -1));
  }).finally(() => clearTimeout(timer));
  if (code !== 0) throw new Error(`wrk ${args.join(" ")} failed (exit ${code}):\n${out}`);

  const report = parseWrkOutput(out);
  const errors =
    report.non2xx +
    report.socketErrors.connect +
    report.socketErrors.read +
    report.socketErrors.write +
    report.socketErrors.timeout;
  return {
    requests: report.requests,
    durationS: report.durationS,
    rps: report.rps,
    p50Ms: report.p50Ms,
    p99Ms: report.p99Ms,
    errors,
    errorDetail:
      errors === 0
        ? undefined
        : `non-2xx ${report.non2xx}, socket errors ${JSON.stringify(report.socketErrors)}`,
  };
}
