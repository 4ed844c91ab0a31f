/**
 * Request/reply throughput: nc.request() against NatsRequester, on a real
 * nats-server, with an echo responder in a separate process (so its CPU and
 * socket writes are not counted as the client's).
 *
 *   npx tsx bench/nats-requester.ts [--requests 200000] [--concurrency 50]
 *   node dist/bench/nats-requester.js
 *
 * Two load shapes:
 * - chained: the next request starts in the previous one's continuation. Replies
 *   arrive in batches, so publishes happen in one turn and nats.js coalesces them.
 * - per-turn: each request starts in its own setImmediate callback, as HTTP
 *   requests each arrive in their own I/O callback; nats.js then flushes each alone.
 * Reports req/s, socket writes per request and CPU µs per request for the client,
 * nats-server and the responder.
 */
import { fork } from "node:child_process";
import { readFileSync } from "node:fs";
import { Socket } from "node:net";
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { connect } from "@nats-io/transport-node";
import { NatsRequester } from "../src/backends/nats/requester.js";
import { startNatsServer } from "../src/devtools/nats-server.js";

const SUBJECT = "bench.echo";
const PAYLOAD = new Uint8Array(178); // the size of the benchmark's User record as protobuf

if (process.argv[2] === "responder") await responder(process.argv[3]!);
else await main();

async function responder(url: string): Promise<void> {
  const nc = await connect({ servers: url, noAsyncTraces: true });
  nc.subscribe(SUBJECT, {
    callback: (_err, msg) => {
      msg.respond(msg.data);
    },
  });
  await nc.flush();
  process.send?.("ready");
  process.once("disconnect", () => void nc.close().then(() => process.exit(0)));
}

type Call = () => Promise<unknown>;

interface Result {
  name: string;
  reqPerSec: number;
  writesPerReq: number;
  clientUs: number;
  serverUs: number;
  responderUs: number;
  p50Ms: number;
  p99Ms: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      requests: { type: "string", default: "200000" },
      concurrency: { type: "string", default: "50" },
    },
  });
  const total = Number(values.requests);
  const concurrency = Number(values.concurrency);
  const server = await startNatsServer();
  const child = fork(fileURLToPath(import.meta.url), ["responder", server.url]);
  await new Promise((resolve) => child.once("message", resolve));
  const nc = await connect({ servers: server.url, noAsyncTraces: true });
  const writes = countSocketWrites();
  const plain = new NatsRequester(nc, { coalesce: false });
  const coalescing = new NatsRequester(nc, { coalesce: true });
  const calls: Array<[string, Call]> = [
    ["nc.request", () => nc.request(SUBJECT, PAYLOAD, { timeout: 5000 })],
    ["NatsRequester", () => plain.request(SUBJECT, PAYLOAD, undefined, 5000)],
    ["NatsRequester coalesce", () => coalescing.request(SUBJECT, PAYLOAD, undefined, 5000)],
  ];
  const pids = { server: server.process.pid!, responder: child.pid! };
  const results: Result[] = [];
  try {
    for (const shape of ["chained", "per-turn"] as const) {
      for (const [name, call] of calls) {
        await run(call, shape, 5000, concurrency); // warm-up
        results.push(
          await measure(`${name}, ${shape}`, call, shape, total, concurrency, writes, pids),
        );
      }
    }
  } finally {
    plain.close();
    coalescing.close();
    await nc.close();
    child.disconnect();
    await server.stop();
  }
  console.log(
    `${total} requests, ${concurrency} in flight, ${PAYLOAD.length}-byte payload, echo responder in its own process`,
  );
  console.table(results.map(format));
  // Other processes on the machine skew req/s; CPU per request is steadier.
  console.log(`load average (1 min) at the end: ${loadavg()[0]?.toFixed(2)}`);
}

async function measure(
  name: string,
  call: Call,
  shape: "chained" | "per-turn",
  total: number,
  concurrency: number,
  writes: { count: number },
  pids: { server: number; responder: number },
): Promise<Result> {
  const cpu0 = process.cpuUsage();
  const server0 = procCpuUs(pids.server);
  const responder0 = procCpuUs(pids.responder);
  const writes0 = writes.count;
  const t0 = performance.now();
  const latencies = await run(call, shape, total, concurrency);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return {
    name,
    reqPerSec: total / seconds,
    writesPerReq: (writes.count - writes0) / total,
    clientUs: (cpu.user + cpu.system) / total,
    serverUs: (procCpuUs(pids.server) - server0) / total,
    responderUs: (procCpuUs(pids.responder) - responder0) / total,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
  };
}

/**
 * Runs `total` calls with `concurrency` in flight; per-turn starts each in its own
 * macrotask. Resolves with each call's latency in ms, from the moment it starts.
 */
function run(call: Call, shape: "chained" | "per-turn", total: number, concurrency: number) {
  const latencies = new Float64Array(total);
  return new Promise<Float64Array>((resolve, reject) => {
    let started = 0;
    let done = 0;
    const next = (): void => {
      if (started === total) return;
      const i = started++;
      const t0 = performance.now();
      call().then(() => {
        latencies[i] = performance.now() - t0;
        if (++done === total) resolve(latencies);
        else if (shape === "chained") next();
        else setImmediate(next);
      }, reject);
    };
    for (let i = 0; i < concurrency; i++) {
      if (shape === "chained") next();
      else setImmediate(next);
    }
  });
}

/** Counts socket writes in this process: the only socket doing I/O here is the client's. */
function countSocketWrites(): { count: number } {
  const counter = { count: 0 };
  const write = Socket.prototype.write;
  Socket.prototype.write = function (this: Socket, ...args: unknown[]) {
    counter.count++;
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  } as typeof write;
  return counter;
}

/** A process's user+system CPU time in µs, from /proc (Linux only; 0 elsewhere). */
function procCpuUs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15)
    return (ticks * 1e6) / 100; // USER_HZ is 100 on Linux
  } catch {
    return 0;
  }
}

function percentile(values: Float64Array, q: number): number {
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function format(r: Result) {
  return {
    mode: r.name,
    "req/s": Math.round(r.reqPerSec),
    "writes/req": r.writesPerReq.toFixed(3),
    "client µs/req": r.clientUs.toFixed(1),
    "server µs/req": r.serverUs.toFixed(1),
    "responder µs/req": r.responderUs.toFixed(1),
    "p50 ms": r.p50Ms.toFixed(2),
    "p99 ms": r.p99Ms.toFixed(2),
  };
}
