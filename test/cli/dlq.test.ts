import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type Msg, headers as natsHeaders } from "@nats-io/transport-node";
import type protobuf from "protobufjs";
import t from "tap";
import {
  DLQ_STREAM,
  ensureDlqStream,
  listDeadLetters,
} from "../../src/backends/nats/dead-letters.js";
import { runDlq } from "../../src/cli/dlq.js";
import { startNatsServer } from "../../src/devtools/nats-server.js";
import { captured } from "../helpers/cli-output.js";
import { call, within } from "../helpers/cutover-fixture.js";
import { ordersGetRoute } from "../helpers/route-yaml.js";
import { startPaidOrdersWorker } from "../helpers/routes-and-workers.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

const routesFile = writeRoutes(
  ordersGetRoute({ headers: "[x-tenant]", cutover: "{ nats: 100, shadow: 0 }" }),
);
const stack = await startStack(t, routesFile, { jetstream: true, adminToken: "dlq-cli-token" });
const gw = stack.gateway;
const getType = stack.root.lookupType("orders.v1.GetOrderRequest");
const orderType = stack.root.lookupType("orders.v1.Order");

/** Runs `turnout dlq ...` in-process with captured output. */
async function cli(...argv: string[]) {
  return captured((out) =>
    runDlq([...argv, "--config", routesFile], out, {
      TURNOUT_NATS_URL: stack.server.url,
    }),
  );
}

t.test(
  "dlq list shows a failed request; dlq replay re-drives it once the worker is back",
  async (t) => {
    const res = await fetch(`${gw.url}/v1/orders/o-7`, {
      headers: { "x-tenant": "acme", "x-request-id": "req-cli-1" },
    });
    t.equal(res.status, 503, "no worker, no legacy: 503");
    t.ok(await within(3000, async () => (await listDeadLetters(stack.nc)).length === 1));

    const list = await cli("list");
    t.equal(list.code, 0, list.stderr);
    t.match(
      list.stdout,
      /^\d+\t\S+\torders\.get\treq-cli-1\tsvc\.orders\.get\tTURNOUT_ERR_NO_RESPONDERS\t.+\n1 dead letter\(s\)\n$/,
    );
    const none = await cli("list", "--since", "2099-01-01T00:00:00Z");
    t.match(none.stdout, /^0 dead letter\(s\)/, "--since filters");

    const early = await cli("replay", "--route", "orders.get");
    t.equal(early.code, 1, "a failed replay exits 1");
    t.match(
      early.stdout,
      /orders\.get\treq-cli-1\tfailed TURNOUT_ERR_NO_RESPONDERS: .* \(kept\)\nreplayed 1: 0 ok, 1 failed\n/,
    );

    const { seen, stop } = startPaidOrdersWorker(stack.nc, stack.root);
    t.teardown(stop);
    await stack.nc.flush();

    const replay = await cli("replay", "--since", "10m");
    t.equal(replay.code, 0, replay.stderr);
    t.match(
      replay.stdout,
      /orders\.get\treq-cli-1\tok 200 \(deleted\)\nreplayed 1: 1 ok, 0 failed\n/,
    );
    t.equal(seen.length, 1, "the worker got the original request");
    t.equal((getType.decode(seen[0]!.data) as protobuf.Message & { id: string }).id, "o-7");
    t.equal(seen[0]!.headers?.get("x-tenant"), "acme");
    t.equal(seen[0]!.headers?.get("X-Request-Id"), "req-cli-1");

    const after = await cli("list");
    t.match(after.stdout, /^0 dead letter\(s\)/, "the letter is gone");
  },
);

t.test("dlq refuses a bad command line with exit 2", async (t) => {
  t.equal((await cli()).code, 2);
  t.equal((await cli("purge")).code, 2);
  t.equal((await cli("list", "--since", "whenever")).code, 2);
  // Date() would read these as 2001-01-01 and 2026-03-03.
  for (const lenient of ["1", "2026-02-31"]) {
    const refused = await cli("list", "--since", lenient);
    t.equal(refused.code, 2, `--since ${lenient} is refused`);
    t.match(refused.stderr, /--since must be an RFC 3339 time/);
  }
  // Below 1 ms, and beyond the dates a Date holds (it listed nothing, silently).
  for (const [bad, why] of [
    ["0.5ms", "must be a whole number of milliseconds"],
    ["99999999999h", "must lie within"],
  ] as const) {
    const refused = await cli("list", "--since", bad);
    t.equal(refused.code, 2, `--since ${bad} is refused`);
    t.match(refused.stderr, `turnout dlq: --since ${why}`);
    t.match(refused.stderr, `got "${bad}"`);
  }
  const unknown = await cli("list", "--route", "nope");
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /no route named "nope"/);
});

/** Empties the stream, then makes one letter per id (no worker listens); their sequences. */
async function letters(...ids: string[]): Promise<number[]> {
  await (await jetstreamManager(stack.nc)).streams.purge(DLQ_STREAM);
  for (const id of ids) {
    const res = await fetch(`${gw.url}/v1/orders/${id}`, { headers: { "x-request-id": id } });
    await res.arrayBuffer();
  }
  const stored = async () => (await listDeadLetters(stack.nc)).length === ids.length;
  if (!(await within(3000, stored))) throw new Error("letters not stored");
  return (await listDeadLetters(stack.nc)).map((letter) => letter.seq);
}

t.test(
  "dlq replay --limit says how to go on, and --after goes on past failed letters",
  async (t) => {
    const [first, second] = await letters("page-1", "page-2");
    const page = await cli("replay", "--limit", "1");
    t.equal(page.code, 1, "no worker: the replay failed");
    t.match(page.stdout, new RegExp(`^${first}\torders.get\tpage-1\tfailed `));
    t.match(page.stdout, new RegExp(`more letters left: go on with --after ${first}\n$`));
    const rest = await cli("replay", "--limit", "1", "--after", String(first));
    t.match(rest.stdout, new RegExp(`^${second}\torders.get\tpage-2\tfailed `), "the next one");
    t.notMatch(rest.stdout, /more letters left/);
    const listed = await cli("list", "--after", String(first));
    t.match(listed.stdout, /\tpage-2\t.*\n1 dead letter\(s\)\n$/);
    const refused = await cli("list", "--after", "x");
    t.equal(refused.code, 2);
    t.match(refused.stderr, /--after must be a whole number/);
  },
);

t.test("dlq delete removes letters by sequence; one with no letter exits 1", async (t) => {
  const [first, second] = await letters("del-1", "del-2");
  const deleted = await cli("delete", String(first));
  t.equal(deleted.code, 0, deleted.stderr);
  t.equal(deleted.stdout, `${first}\torders.get\tdel-1\tdeleted\n`);
  t.same(
    (await listDeadLetters(stack.nc)).map((letter) => letter.seq),
    [second],
  );
  const missing = await cli("delete", String(first), String(second));
  t.equal(missing.code, 1, "one of them was not there");
  t.match(missing.stderr, new RegExp(`no dead letter at sequence ${first}`));
  t.match(missing.stdout, new RegExp(`^${second}\torders.get\tdel-2\tdeleted\n$`));
  t.equal((await cli("delete")).code, 2, "a sequence is needed");
  t.equal((await cli("delete", "--route", "orders.get", "5")).code, 2, "filters are refused");
  t.equal((await cli("delete", "0")).code, 2);
});

t.test(
  "a CLI replay and an admin replay at once send each letter once; the CLI reports no failure",
  async (t) => {
    await letters("both-1", "both-2");
    const seen: Msg[] = [];
    const sub = stack.nc.subscribe("svc.orders.get", {
      callback: (_err, msg) => {
        seen.push(msg);
        const reply = orderType.encode(orderType.fromObject({ id: "x" })).finish();
        // Slow enough that the admin replay is still at it when the CLI starts.
        setTimeout(() => msg.respond(reply), 300);
      },
    });
    t.teardown(() => sub.unsubscribe());
    await stack.nc.flush();
    const [fromCli, fromApi] = await Promise.all([
      cli("replay"),
      call(`${gw.adminUrl}/admin/dlq/replay`, {
        method: "POST",
        body: "{}",
        token: "dlq-cli-token",
      }),
    ]);
    t.equal(fromApi.status, 200);
    t.equal(seen.length, 2, "the worker got each letter once");
    t.equal(fromCli.code, 0, fromCli.stdout);
    t.notMatch(fromCli.stdout, /failed [A-Z]/, "no letter reported failed");
    t.match(fromCli.stdout, /replayed \d: \d ok, 0 failed/);
    t.same(await listDeadLetters(stack.nc), []);
  },
);

t.test(
  "a worker's error text is printed with its control characters escaped: no terminal escape, no extra column",
  async (t) => {
    await letters("evil-1");
    const sub = stack.nc.subscribe("svc.orders.get", {
      callback: (_err, msg) => {
        const h = natsHeaders();
        h.set("Nats-Service-Error-Code", "500");
        h.set("Nats-Service-Error", "boom\u001b[2J\tcol");
        msg.respond(new Uint8Array(0), { headers: h });
      },
    });
    t.teardown(() => sub.unsubscribe());
    await stack.nc.flush();
    const run = await cli("replay");
    t.equal(run.code, 1);
    t.notOk(run.stdout.includes("\u001b"), "no escape reaches the terminal");
    t.match(run.stdout, /\tevil-1\tfailed 500: boom\\u001b\[2J\\u0009col \(kept\)\n/);
    t.equal(run.stdout.split("\n")[0]!.split("\t").length, 4, "four columns");
  },
);

t.test(
  "dlq list, replay and delete say dead letters are unavailable and exit 1 without JetStream",
  async (t) => {
    const bare = await startNatsServer({ jetstream: false });
    t.teardown(() => bare.stop());
    for (const command of ["list", "replay", "delete 1"]) {
      const run = await captured((out) =>
        runDlq([...command.split(" "), "--config", routesFile], out, {
          TURNOUT_NATS_URL: bare.url,
        }),
      );
      t.equal(run.code, 1, command);
      t.match(run.stderr, /^turnout dlq: dead letters unavailable: .*no JetStream/, command);
    }
  },
);

t.test(
  "a replay cut short by a NATS outage still reports the letters it re-sent, then exits 1",
  async (t) => {
    const server = await startNatsServer({ jetstream: true });
    t.teardown(() => server.stop());
    const nc = await connect({ servers: server.url, reconnect: false });
    t.teardown(() => nc.close());
    await ensureDlqStream(nc);
    const js = jetstream(nc);
    for (const id of ["cut-1", "cut-2", "cut-3", "cut-4", "cut-5", "cut-6"]) {
      const h = natsHeaders();
      h.set("Turnout-Route", "orders.get");
      h.set("X-Request-Id", id);
      h.set("Turnout-Subject", "svc.orders.get");
      await js.publish("turnout.dlq.orders.get", getType.encode({ id }).finish(), { headers: h });
    }
    // Slow answers; NATS goes away once two letters have been answered.
    const answered: string[] = [];
    nc.subscribe("svc.orders.get", {
      callback: (_err, msg: Msg) => {
        const reply = orderType.encode(orderType.fromObject({ id: "o" })).finish();
        setTimeout(() => {
          msg.respond(reply);
          answered.push(msg.headers?.get("X-Request-Id") ?? "");
          if (answered.length === 2) setTimeout(() => void server.stop(), 20);
        }, 50);
      },
    });
    await nc.flush();
    const replay = await captured((out) =>
      runDlq(["replay", "--config", routesFile], out, { TURNOUT_NATS_URL: server.url }),
    );
    t.equal(replay.code, 1, "exits 1");
    t.match(replay.stdout, /\torders\.get\tcut-1\tok 200 \(deleted\)\n/, "the re-sent letters");
    t.match(replay.stdout, /\torders\.get\tcut-2\tok 200 \(deleted\)\n/);
    t.match(replay.stderr, /^turnout dlq: replay stopped: dead letters unavailable: /m);
    t.match(replay.stdout, /more letters left: go on with --after \d+\n$/);
  },
);

t.test("dlq delete escapes control characters in what it prints back, as list does", async (t) => {
  const h = natsHeaders();
  h.set("Turnout-Route", "orders.get");
  h.set("X-Request-Id", "evil\u001b]0;pwned\u0007\tX");
  h.set("Turnout-Subject", "svc.orders.get");
  const js = jetstream(stack.nc);
  const { seq } = await js.publish("turnout.dlq.orders.get", new Uint8Array(0), { headers: h });
  const deleted = await cli("delete", String(seq));
  t.equal(deleted.code, 0, deleted.stderr);
  t.equal(deleted.stdout, `${seq}\torders.get\tevil\\u001b]0;pwned\\u0007\\u0009X\tdeleted\n`);
});
