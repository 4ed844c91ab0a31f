/**
 * `turnout serve --workers 2`: `/metrics` on the shared admin port answers for
 * both workers, whichever of them gets the scrape. Proved on a real gateway: K
 * requests spread over both workers (their pids in the request log), then every
 * scrape counts exactly K. And the worker's side of the IPC never hangs a scrape.
 */
import { once } from "node:events";
import t, { type Test } from "tap";
import { freePortPair } from "../../src/devtools/nats-server.js";
import {
  ClusterMetricsClient,
  type PrimaryChannel,
} from "../../src/observability/cluster-metrics.js";
import {
  exitCode,
  spawnServe,
  startUsersGetWorker,
  usersGetServeArgs,
  waitUntil,
} from "../helpers/serve-process.js";

/** `turnout serve --workers 2` at info (request log lines carry each worker's pid), both up. */
async function serveTwoWorkers(t: Test) {
  const server = await startUsersGetWorker(t);
  const [port, adminPort] = await freePortPair();
  const admin = `http://127.0.0.1:${adminPort}`;
  const { gateway, output } = spawnServe(
    t,
    [...usersGetServeArgs(server.url, { port, adminPort }), "--workers", "2"],
    // The admin listener logs scrapes at debug: which worker answered each.
    "debug",
  );
  await waitUntil(() => output.text.match(/serving on/g)?.length === 2, 30_000);
  return { port, admin, gateway, output };
}

/** One GET on a fresh connection (round-robin over the workers); anything but 200 fails `t`. */
async function requestUser(t: Test, port: number, i: number): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${port}/v1/regions/eu/users/r-${i}`, {
    headers: { connection: "close" },
    signal: AbortSignal.timeout(5000),
  });
  await res.arrayBuffer();
  if (res.status !== 200) t.fail(`request ${i}: ${res.status}`);
}

/**
 * Sends requests (each on a fresh connection: round-robin over the workers)
 * until both workers logged at least `each`; returns how many were sent.
 */
async function untilBothServed(
  t: Test,
  port: number,
  output: { text: string },
  each: number,
): Promise<number> {
  let sent = 0;
  const served = () => requestsByPid(output.text);
  const logged = () => [...served().values()].reduce((a, b) => a + b, 0);
  await waitUntil(async () => {
    await requestUser(t, port, sent++);
    await waitUntil(() => logged() === sent, 5000);
    return served().size === 2 && [...served().values()].every((count) => count >= each);
  }, 30_000);
  return sent;
}

const K = 40;
const SCRAPES = 6;

t.test("--workers 2: every scrape counts the requests of both workers", async (t) => {
  const { port, admin, gateway, output } = await serveTwoWorkers(t);
  // Fresh connections go round-robin over the workers: a run of 200s means both are ready.
  let readyInARow = 0;
  await waitUntil(async () => {
    const res = await fetch(`${admin}/readyz`, { headers: { connection: "close" } });
    await res.arrayBuffer();
    readyInARow = res.status === 200 ? readyInARow + 1 : 0;
    return readyInARow >= 6;
  }, 30_000);

  for (let i = 0; i < K; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/v1/regions/eu/users/u-${i}`, {
      headers: { connection: "close" },
    });
    await res.arrayBuffer();
    if (res.status !== 200) t.fail(`request ${i}: ${res.status}`);
  }
  const logged = () => [...requestsByPid(output.text).values()].reduce((a, b) => a + b, 0);
  await waitUntil(() => logged() === K, 10_000); // the log lines arrive through a pipe
  const served = requestsByPid(output.text);
  t.equal(served.size, 2, `both workers served requests: ${JSON.stringify([...served])}`);

  const timings: number[] = [];
  for (let i = 0; i < SCRAPES; i++) {
    const started = performance.now();
    const res = await fetch(`${admin}/metrics`, { headers: { connection: "close" } });
    const text = await res.text();
    timings.push(performance.now() - started);
    t.equal(res.status, 200, `scrape ${i}: 200`);
    t.match(res.headers.get("content-type"), /^text\/plain; version=0\.0\.4/);
    t.equal(sample(text, "turnout_requests_total", 'route="users.get"'), K, `scrape ${i}: ${K}`);
    t.equal(
      sample(text, "turnout_request_duration_seconds_count", 'route="users.get"'),
      K,
      `scrape ${i}: the histograms are summed too`,
    );
    t.equal(
      sample(text, "turnout_cutover_percent", 'route="users.get",kind="nats"'),
      100,
      `scrape ${i}: the cutover share is the workers' (max), not their sum`,
    );
    t.ok(sample(text, "process_cpu_seconds_total") > 0, `scrape ${i}: process metrics`);
    t.equal(text.match(/^# TYPE turnout_requests_total /gm)?.length, 1, "one family each");
    t.equal(text.match(/^nodejs_version_info\{/gm)?.length, 1, "one version line");
  }
  const scraped = () => [...scrapesByPid(output.text).values()].reduce((a, b) => a + b, 0);
  await waitUntil(() => scraped() === SCRAPES, 10_000);
  const scrapes = scrapesByPid(output.text);
  t.equal(scrapes.size, 2, `both workers answered scrapes: ${JSON.stringify([...scrapes])}`);
  t.comment(`scrape time with 2 workers: ${timings.map((ms) => ms.toFixed(1)).join(", ")} ms`);

  // A worker that cannot answer (stopped) fails the scrapes of the other one: 503, not a hang.
  const [stopped] = served.keys();
  process.kill(stopped!, "SIGSTOP");
  const resumed = () => process.kill(stopped!, "SIGCONT");
  t.teardown(() => {
    try {
      resumed();
    } catch {} // already gone
  });
  const attempts = await Promise.all(
    [0, 1].map(async () => {
      const started = performance.now();
      try {
        const res = await fetch(`${admin}/metrics`, {
          headers: { connection: "close" },
          signal: AbortSignal.timeout(7000),
        });
        return { status: res.status, body: await res.text(), ms: performance.now() - started };
      } catch {
        return { status: 0, body: "", ms: performance.now() - started }; // sent to the stopped one
      }
    }),
  );
  const failed = attempts.find((attempt) => attempt.status === 503);
  t.ok(failed, `a scrape is refused: ${JSON.stringify(attempts.map((a) => a.status))}`);
  t.match(JSON.parse(failed?.body ?? "{}"), {
    status: 503,
    code: "TURNOUT_ERR_METRICS_UNAVAILABLE",
    detail: /workers did not all report their metrics|primary did not answer/,
  });
  t.comment(`refused after ${failed?.ms.toFixed(0)} ms`);
  resumed();
  const again = await fetch(`${admin}/metrics`, { headers: { connection: "close" } });
  t.equal(
    sample(await again.text(), "turnout_requests_total"),
    K,
    "complete again once it answers",
  );

  const exited = once(gateway, "exit");
  gateway.kill("SIGTERM");
  const [code] = await exited;
  t.equal(code, 0, `the primary exits 0 once both workers drained; output:\n${tail(output.text)}`);
});

t.test(
  "--workers 2: a SIGKILLed worker's replacement fails no scrape while it starts",
  async (t) => {
    // prom-client's round asked every connected worker, the replacement too while
    // it was still loading: the request was dropped and the scrape a 503 after 5 s.
    const { port, admin, gateway, output } = await serveTwoWorkers(t);
    const servingLines = () => output.text.match(/serving on/g)?.length ?? 0;
    let sent = await untilBothServed(t, port, output, 1);
    const served = () => requestsByPid(output.text);
    const logged = () => [...served().values()].reduce((a, b) => a + b, 0);

    const [killed, survivor] = [...served().keys()];
    process.kill(killed!, "SIGKILL");
    const replacing = new RegExp(`worker ${killed} exited \\(SIGKILL\\)[^;\\n]*; replacing it`);
    await waitUntil(() => replacing.test(output.text), 10_000);
    const survived = served().get(survivor!)!;

    // The replacement is forked 1 s after the exit, then loads: scrape all along.
    const scrapes: Array<{ status: number; ms: number; total: number; detail?: string }> = [];
    const since = Date.now();
    let replacementServing: number | undefined;
    await waitUntil(async () => {
      const started = performance.now();
      const res = await fetch(`${admin}/metrics`, {
        headers: { connection: "close" },
        signal: AbortSignal.timeout(8000),
      }).catch(() => undefined);
      const text = (await res?.text()) ?? "";
      scrapes.push({
        status: res?.status ?? 0,
        ms: Math.round(performance.now() - started),
        total: sample(text, "turnout_requests_total", 'route="users.get"'),
        ...(res?.status === 200 ? {} : { detail: text.slice(0, 200) }),
      });
      if (replacementServing === undefined && servingLines() === 3) replacementServing = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 100));
      return (
        Date.now() - since > 4000 &&
        replacementServing !== undefined &&
        Date.now() - replacementServing > 500
      );
    }, 25_000);
    const refused = scrapes.filter((scrape) => scrape.status !== 200);
    t.same(
      refused,
      [],
      `no scrape refused while the replacement started (${scrapes.length} scrapes)`,
    );
    t.ok(
      scrapes.every((scrape) => scrape.total === survived),
      `every scrape counts the survivor's ${survived} requests: ${scrapes.map((s) => s.total)}`,
    );
    t.comment(`scrape times: ${scrapes.map((scrape) => scrape.ms).join(", ")} ms`);

    // Once it has joined, the replacement's requests are counted too.
    const replacement = () =>
      [...served().keys()].find((pid) => pid !== killed && pid !== survivor);
    await waitUntil(async () => {
      await requestUser(t, port, sent++);
      await waitUntil(() => logged() === sent, 5000);
      return (served().get(replacement() ?? -1) ?? 0) >= 3;
    }, 30_000);
    const counts = served();
    const expected = counts.get(survivor!)! + counts.get(replacement()!)!;
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${admin}/metrics`, {
        headers: { connection: "close" },
        signal: AbortSignal.timeout(8000),
      });
      const text = await res.text();
      t.equal(res.status, 200, `scrape ${i} after the replacement served: 200`);
      t.equal(
        sample(text, "turnout_requests_total", 'route="users.get"'),
        expected,
        `scrape ${i}: the survivor's and the replacement's requests (${JSON.stringify([...counts])})`,
      );
    }

    gateway.kill("SIGTERM");
    t.equal(
      await exitCode(gateway, 30_000),
      0,
      `the primary exits 0 once both workers drained; output:\n${tail(output.text)}`,
    );
  },
);

t.test(
  "--workers 2: a SIGKILLed worker's counts stay in every later scrape (no counter goes down)",
  async (t) => {
    // The sum was of the joined workers only: a dead worker's counts left it,
    // and Prometheus read the drop as a counter reset (rate() spikes).
    const { port, admin, gateway, output } = await serveTwoWorkers(t);
    const sent = await untilBothServed(t, port, output, 3);
    const served = () => requestsByPid(output.text);

    const scrape = async () => {
      const res = await fetch(`${admin}/metrics`, {
        headers: { connection: "close" },
        signal: AbortSignal.timeout(8000),
      });
      return { status: res.status, text: await res.text() };
    };
    const before = await scrape();
    t.equal(before.status, 200, "scrape before the kill: 200");
    const requestsBefore = series(before.text, "turnout_requests_total");
    const durationsBefore = series(before.text, "turnout_request_duration_seconds_count");
    t.equal(sum(requestsBefore), sent, `before the kill: the ${sent} requests of both workers`);

    const counts = served();
    const [killed] = counts.keys();
    process.kill(killed!, "SIGKILL");
    await waitUntil(() => output.text.includes(`worker ${killed} exited (SIGKILL)`), 10_000);
    // The replacement has joined once it serves (it joins first thing in serve).
    await waitUntil(() => (output.text.match(/serving on/g)?.length ?? 0) === 3, 30_000);

    for (let i = 0; i < 3; i++) {
      const after = await scrape();
      t.equal(after.status, 200, `scrape ${i} after the replacement started: 200`);
      const requestsAfter = series(after.text, "turnout_requests_total");
      for (const [labels, value] of requestsBefore) {
        t.ok(
          (requestsAfter.get(labels) ?? 0) >= value,
          `scrape ${i}: turnout_requests_total${labels} ${requestsAfter.get(labels)} >= ${value} (worker ${killed} served ${counts.get(killed!)})`,
        );
      }
      t.equal(sum(requestsAfter), sum(requestsBefore), `scrape ${i}: no request since, same total`);
      t.same(
        series(after.text, "turnout_request_duration_seconds_count"),
        durationsBefore,
        `scrape ${i}: the histograms keep the dead worker's observations too`,
      );
    }

    gateway.kill("SIGTERM");
    t.equal(
      await exitCode(gateway, 30_000),
      0,
      `the primary exits 0 once both workers drained; output:\n${tail(output.text)}`,
    );
  },
);

t.test("a worker's scrape fails (never hangs) when the primary does not answer", async (t) => {
  const sent: unknown[] = [];
  const listeners: Array<(message: unknown) => void> = [];
  const channel: PrimaryChannel = {
    connected: true,
    send: (message) => sent.push(message),
    on: (_event, listener) => listeners.push(listener),
  };
  const client = new ClusterMetricsClient(channel, 50);
  await t.rejects(client.scrape(), /did not answer within 50 ms/);
  t.match(sent, [{ type: "turnout:cluster-metrics:ask", id: 0 }]);

  const answered = client.scrape();
  for (const listener of listeners) {
    listener({ type: "turnout:cluster-metrics:answer", id: 0, text: "late" }); // ignored
    listener({ type: "turnout:cluster-metrics:answer", id: 1, text: "# all workers\n" });
  }
  t.equal(await answered, "# all workers\n");

  const failed = client.scrape();
  for (const listener of listeners) {
    listener({ type: "turnout:cluster-metrics:answer", id: 2, error: "worker 7 is gone" });
  }
  await t.rejects(failed, /worker 7 is gone/);

  const offline = new ClusterMetricsClient({ ...channel, connected: false });
  await t.rejects(offline.scrape(), /no IPC channel/);
});

/** The value of one sample line (the sum when several lines match `labels`). */
function sample(text: string, name: string, labels = ""): number {
  let total = Number.NaN;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!line.includes(labels)) continue;
    total = (Number.isNaN(total) ? 0 : total) + Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return total;
}

/** Every sample line of `name`: its value by label set (`{...}`, or "" without labels). */
function series(text: string, name: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const space = line.lastIndexOf(" ");
    values.set(line.slice(name.length, space), Number(line.slice(space + 1)));
  }
  return values;
}

function sum(values: Map<string, number>): number {
  return [...values.values()].reduce((a, b) => a + b, 0);
}

interface LogLine {
  pid?: number;
  msg?: string;
  route?: string;
  path?: string;
}

/** How many JSON log lines of each pid `accept` picks. */
function countByPid(output: string, accept: (line: LogLine) => boolean): Map<number, number> {
  const counts = new Map<number, number>();
  for (const text of output.split("\n")) {
    if (!text.startsWith("{") || !text.endsWith("}")) continue;
    const line = JSON.parse(text) as LogLine;
    if (line.pid !== undefined && accept(line)) {
      counts.set(line.pid, (counts.get(line.pid) ?? 0) + 1);
    }
  }
  return counts;
}

/** The public listener's request log: one line per request. */
function requestsByPid(output: string): Map<number, number> {
  return countByPid(output, (line) => line.msg === "request" && line.route === "users.get");
}

/** The admin listener's log of its calls (scrapes at debug). */
function scrapesByPid(output: string): Map<number, number> {
  return countByPid(output, (line) => line.msg === "admin call" && line.path === "/metrics");
}

function tail(text: string): string {
  return text.split("\n").slice(-30).join("\n");
}
