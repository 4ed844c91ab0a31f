/**
 * `turnout serve --workers 2` after its start: a worker that dies is replaced
 * while the other keeps serving, whatever happens to the replacement. One that
 * cannot start (routes.yaml edited since) is retried, never a reason to stop
 * its healthy sibling; every worker serves the route table turnout started
 * with; and a replacement takes no share of the shared ports before it is
 * connected to NATS.
 */
import { once } from "node:events";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { createConnection, createServer, type Socket } from "node:net";
import { dirname, join } from "node:path";
import t, { type Test } from "tap";
import { freePortPair, type NatsServer } from "../../src/devtools/nats-server.js";
import {
  spawnServe,
  startUsersGetWorker,
  USERS_GET_ROUTE,
  waitUntil,
} from "../helpers/serve-process.js";
import { PROTO_DIR, writeRoutes } from "../helpers/stack.js";

const count = (text: string, pattern: RegExp) => text.match(pattern)?.length ?? 0;

/** `serve --workers 2` on `routes`, both workers up and ready; fresh connections round-robin. */
async function startTwoWorkers(t: Test, routes: string, natsUrl: string) {
  const [port, adminPort] = await freePortPair();
  const args = ["--config", routes, "--nats-url", natsUrl, "--workers", "2"];
  const ports = ["--port", String(port), "--admin-port", String(adminPort)];
  const { gateway, output } = spawnServe(t, [...args, ...ports]);
  const exited = once(gateway, "exit");
  await waitUntil(() => count(output.text, /serving on/g) === 2, 20_000).catch(() => {
    throw new Error(`the workers did not start; output:\n${output.text}`);
  });
  const get = (path: string, onPort = port) =>
    fetch(`http://127.0.0.1:${onPort}${path}`, {
      headers: { connection: "close" },
      signal: AbortSignal.timeout(3000),
    }).then(async (res) => ({ status: res.status, body: await res.text() }));
  const readyz = () => get("/readyz", adminPort);
  let readyInARow = 0;
  await waitUntil(async () => {
    readyInARow = (await readyz()).status === 200 ? readyInARow + 1 : 0;
    return readyInARow >= 4;
  }, 10_000);
  return { gateway, output, exited, get, readyz };
}

/** Kills one of the primary's two workers; returns its pid. */
function killOneWorker(primaryPid: number): number {
  const [victim] = readFileSync(`/proc/${primaryPid}/task/${primaryPid}/children`, "utf8")
    .trim()
    .split(/\s+/)
    .map(Number);
  process.kill(victim!, "SIGKILL");
  return victim!;
}

/** The primary's most recently forked worker. */
function newestWorker(primaryPid: number): number {
  const children = readFileSync(`/proc/${primaryPid}/task/${primaryPid}/children`, "utf8")
    .trim()
    .split(/\s+/)
    .map(Number);
  return Math.max(...children);
}

/** For `ms`: every /readyz and every request on the shared ports answers 200. */
async function assertStillServing(
  t: Test,
  running: Awaited<ReturnType<typeof startTwoWorkers>>,
  ms: number,
): Promise<void> {
  const seen: Record<string, number> = {};
  for (const until = Date.now() + ms; Date.now() < until; ) {
    const answers = await Promise.all([
      running.readyz(),
      running.get("/v1/regions/eu/users/u-7"),
    ]).catch((error: Error) => [{ status: `error ${error.message}`, body: "" }]);
    for (const { status } of answers) seen[status] = (seen[status] ?? 0) + 1;
  }
  t.same(Object.keys(seen), ["200"], `only 200s from the healthy worker: ${JSON.stringify(seen)}`);
  t.equal(running.gateway.exitCode, null, "the primary is still running");
}

async function stopAndExpectExitZero(
  t: Test,
  running: Awaited<ReturnType<typeof startTwoWorkers>>,
): Promise<void> {
  running.gateway.kill("SIGTERM");
  const timeout = AbortSignal.timeout(15_000);
  const [code] = await Promise.race([
    running.exited,
    once(timeout, "abort").then(() => ["timed out"]),
  ]);
  t.equal(code, 0, `the primary exits 0; output:\n${running.output.text}`);
}

t.test(
  "a replacement that cannot start (routes.yaml made invalid) is retried while the other worker serves; it comes up once the file is restored",
  async (t) => {
    const server = await startUsersGetWorker(t);
    const routes = writeRoutes(USERS_GET_ROUTE);
    const original = readFileSync(routes, "utf8");
    const running = await startTwoWorkers(t, routes, server.url);

    writeFileSync(routes, original.replace("timeout: 5s", "timeout: 5 seconds"));
    killOneWorker(running.gateway.pid!);
    await waitUntil(() => running.output.text.includes("REPLACEMENT WORKER FAILED"), 10_000).catch(
      () => {
        throw new Error(`no failed replacement reported; output:\n${running.output.text}`);
      },
    );
    t.match(running.output.text, /1 of 2 workers serving; retrying in \d+ s/);
    await assertStillServing(t, running, 1500);

    writeFileSync(routes, original);
    await waitUntil(() => count(running.output.text, /serving on/g) === 3, 15_000).catch(() => {
      throw new Error(`the replacement did not come up; output:\n${running.output.text}`);
    });
    t.pass("a replacement serves once routes.yaml is back to what turnout started with");
    await stopAndExpectExitZero(t, running);
  },
);

t.test(
  "a worker that dies soon after it started serving is replaced later each time (a crash loop), while the other serves",
  async (t) => {
    const server = await startUsersGetWorker(t);
    const running = await startTwoWorkers(t, writeRoutes(USERS_GET_ROUTE), server.url);
    const first = killOneWorker(running.gateway.pid!);
    const died = (pid: number, pause: number) =>
      new RegExp(
        `worker ${pid} exited \\(SIGKILL\\) [\\d.]+ s after it started serving; replacing it in ${pause} s`,
      );
    await waitUntil(() => died(first, 1).test(running.output.text), 10_000);
    await waitUntil(() => count(running.output.text, /serving on/g) === 3, 15_000);
    const second = newestWorker(running.gateway.pid!);
    process.kill(second, "SIGKILL");
    await waitUntil(() => died(second, 2).test(running.output.text), 10_000).catch(() => {
      throw new Error(`no longer pause reported; output:\n${running.output.text}`);
    });
    t.pass("the second replacement waits twice as long");
    await assertStillServing(t, running, 1000);
    await stopAndExpectExitZero(t, running);
  },
);

t.test(
  "a replacement refuses a valid edit of routes.yaml or a proto since the start, naming the files; the other worker serves on",
  async (t) => {
    const server = await startUsersGetWorker(t);
    const routes = writeRoutes(USERS_GET_ROUTE);
    // The protos copied beside it, so that one can be edited.
    const protos = join(dirname(routes), "proto");
    cpSync(PROTO_DIR, protos, { recursive: true });
    const original = readFileSync(routes, "utf8").replace(JSON.stringify(PROTO_DIR), protos);
    writeFileSync(routes, original);
    const running = await startTwoWorkers(t, routes, server.url);

    writeFileSync(routes, original.replace("timeout: 5s", "timeout: 4s"));
    const usersProto = join(protos, "users/v1/users.proto");
    writeFileSync(usersProto, `${readFileSync(usersProto, "utf8")}\n// edited\n`);
    killOneWorker(running.gateway.pid!);
    await waitUntil(() => running.output.text.includes("REPLACEMENT WORKER FAILED"), 10_000).catch(
      () => {
        throw new Error(`no refused replacement reported; output:\n${running.output.text}`);
      },
    );
    const refusal = /changed since turnout started: ([^\n]*); not starting/.exec(
      running.output.text,
    );
    t.ok(refusal, `the replacement says why it refuses; output:\n${running.output.text}`);
    t.match(refusal?.[1], `${routes} (edited)`, "names routes.yaml");
    t.match(refusal?.[1], `${usersProto} (edited)`, "names the proto file");
    t.match(refusal?.[1], /restart turnout to load it/);
    t.equal(count(running.output.text, /serving on/g), 2, "no worker serves the edited table");
    await assertStillServing(t, running, 1000);
    await stopAndExpectExitZero(t, running);
  },
);

/**
 * A TCP proxy to NATS that can hold new connections silent (accepted, nothing
 * forwarded, as a hanging NATS node does) until released: the connections
 * already made, the healthy worker's, carry on.
 */
async function startHoldingProxy(t: Test, server: NatsServer) {
  const target = new URL(server.url);
  let holding = false;
  const held: Socket[] = [];
  const forward = (client: Socket) => {
    const nats = createConnection(Number(target.port), target.hostname);
    client.pipe(nats).pipe(client);
    client.on("error", () => nats.destroy());
    nats.on("error", () => client.destroy());
  };
  const proxy = createServer((client) => {
    if (holding) held.push(client);
    else forward(client);
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  t.teardown(() => {
    for (const socket of held) socket.destroy();
    proxy.close();
  });
  const { port } = proxy.address() as { port: number };
  return {
    url: `nats://127.0.0.1:${port}`,
    hold: () => (holding = true),
    heldCount: () => held.length,
    release: () => {
      holding = false;
      for (const client of held.splice(0)) forward(client);
    },
  };
}

t.test(
  "a replacement takes no share of the shared ports before it is connected to NATS: no 503 NOT_CONNECTED (nor /readyz 503) while its sibling is healthy",
  async (t) => {
    const server = await startUsersGetWorker(t);
    const proxy = await startHoldingProxy(t, server);
    const running = await startTwoWorkers(t, writeRoutes(USERS_GET_ROUTE), proxy.url);

    // The replacement's NATS connect hangs until released; the healthy worker's link stays.
    proxy.hold();
    killOneWorker(running.gateway.pid!);
    await waitUntil(() => proxy.heldCount() > 0, 15_000).catch(() => {
      throw new Error(`the replacement never tried NATS; output:\n${running.output.text}`);
    });
    // Fresh connections go round-robin over every worker listening on a shared port.
    const seen: Record<string, number> = {};
    const tally = (key: string) => (seen[key] = (seen[key] ?? 0) + 1);
    for (const until = Date.now() + 2000; Date.now() < until; ) {
      const { status, body } = await running.get("/v1/regions/eu/users/u-9");
      tally(status === 503 ? `503 ${/"code":"(\w+)"/.exec(body)?.[1]}` : String(status));
      tally(`/readyz ${(await running.readyz()).status}`);
    }
    t.same(
      Object.keys(seen).sort(),
      ["/readyz 200", "200"],
      `every request and /readyz answered by the sibling: ${JSON.stringify(seen)}`,
    );
    t.equal(count(running.output.text, /serving on/g), 2, "the replacement is not serving yet");

    proxy.release();
    await waitUntil(() => count(running.output.text, /serving on/g) === 3, 10_000).catch(() => {
      throw new Error(
        `the replacement did not listen once connected; output:\n${running.output.text}`,
      );
    });
    t.pass("the replacement listens once connected");
    await stopAndExpectExitZero(t, running);
  },
);
