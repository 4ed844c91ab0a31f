import t from "tap";
import { loadConfigAndProtos } from "../../src/config/load.js";
import type { RunningGateway } from "../../src/server/start.js";
import { call, cutoverRoutes, TOKEN, within } from "../helpers/cutover-fixture.js";
import { startLoopbackGateway, startStack } from "../helpers/stack.js";

const routesFile = cutoverRoutes();
const stack = await startStack(t, routesFile, { jetstream: true, adminToken: TOKEN });
const a = stack.gateway;

async function replica(token: string | null = TOKEN): Promise<RunningGateway> {
  const { config, root } = loadConfigAndProtos(routesFile, { natsUrl: stack.server.url });
  const gateway = await startLoopbackGateway({ config, root, adminToken: token ?? undefined });
  t.teardown(() => gateway.close());
  await gateway.connected;
  await gateway.cutoverStore.settled;
  return gateway;
}

const b = await replica();
await within(5000, () => a.cutoverStore.mode === "live" && b.cutoverStore.mode === "live");

t.test(
  "a change through one replica's admin API is applied by another within a second",
  async (t) => {
    t.equal(b.cutover.of("users.get").nats, 10, "starts from routes.yaml");
    const put = await call(`${a.adminUrl}/admin/routes/users.get/cutover`, {
      method: "PUT",
      body: JSON.stringify({ nats: 37.5, shadow: 20, reason: "widen the canary", by: "alice" }),
    });
    t.equal(put.status, 200);
    t.match(put.body, { route: "users.get", nats: 37.5, shadow: 20, by: "alice" });
    const applied = await within(1000, () => b.cutover.of("users.get").nats === 37.5);
    t.ok(applied, "replica b serves the new split within 1 s");
    t.equal(b.cutover.of("users.get").shadow, 20);
    t.equal(b.cutover.of("users.get").source, "live");

    const metrics = await (await fetch(`${b.adminUrl}/metrics`)).text();
    t.match(metrics, /turnout_cutover_percent\{route="users.get",kind="nats"\} 37\.5/);

    const list = await call(`${b.adminUrl}/admin/routes`);
    t.equal(list.status, 200);
    t.equal(list.body.cutover, "live");
    const routes = list.body.routes as Array<Record<string, unknown>>;
    t.match(
      routes.find((r) => r.name === "users.get"),
      { nats: 37.5, shadow: 20, source: "live", by: "alice", reason: "widen the canary" },
    );
    t.match(
      routes.find((r) => r.name === "orders.get"),
      { nats: 100, source: "live", by: "routes.yaml" },
    );
  },
);

t.test(
  "history and rollback through the admin API restore the values before the latest change",
  async (t) => {
    await call(`${a.adminUrl}/admin/routes/users.create/cutover`, {
      method: "PUT",
      body: JSON.stringify({ nats: 5, reason: "first writes" }),
    });
    const rb = await call(`${a.adminUrl}/admin/routes/users.create/cutover/rollback`, {
      method: "POST",
    });
    t.equal(rb.status, 200);
    t.match(rb.body, { nats: 0, shadow: 0, reason: /^rollback of \d{4}-/ });
    t.ok(
      await within(1000, () => b.cutover.of("users.create").nats === 0),
      "b applies the rollback",
    );
    const history = await call(`${a.adminUrl}/admin/routes/users.create/cutover/history`);
    const entries = history.body.history as Array<Record<string, unknown>>;
    t.same(
      entries.map((e) => [e.nats, e.by]),
      [
        [0, "routes.yaml"],
        [5, "admin-api"],
        [0, "admin-api"],
      ],
    );
  },
);

const badCases: Array<[string, string, string, string]> = [
  ["a percentage above 100", "users.get", JSON.stringify({ nats: 101, reason: "x" }), "nats"],
  [
    "a negative shadow",
    "users.get",
    JSON.stringify({ nats: 1, shadow: -1, reason: "x" }),
    "shadow",
  ],
  ["three decimals", "users.get", JSON.stringify({ nats: 12.345, reason: "x" }), "nats"],
  // Below a hundredth: it used to pass the check.
  ["a percentage of 1e-9", "users.get", '{"nats": 1e-9, "reason": "x"}', "nats"],
  [
    "a null shadow (0 turns it off)",
    "users.get",
    JSON.stringify({ nats: 5, shadow: null, reason: "x" }),
    "shadow",
  ],
  ["a missing reason", "users.get", JSON.stringify({ nats: 20 }), "reason"],
  ["a missing nats", "users.get", JSON.stringify({ reason: "x" }), "nats"],
  ["a body that is not JSON", "users.get", "{nats: 5", "body"],
  [
    "a shadow on a write route without shadowWrites",
    "users.create",
    JSON.stringify({ nats: 0, shadow: 5, reason: "x" }),
    "shadow",
  ],
  [
    "a split on a route without legacy",
    "orders.get",
    JSON.stringify({ nats: 90, reason: "x" }),
    "nats",
  ],
  [
    "a newline in the reason (a forged history row)",
    "users.get",
    JSON.stringify({ nats: 5, reason: "one\n9  2099-01-01T00:00:00.000Z  ceo  0  0  forged" }),
    "reason",
  ],
  [
    "an ANSI escape in the reason",
    "users.get",
    JSON.stringify({ nats: 5, reason: "red \u001b[31m alert" }),
    "reason",
  ],
  ["a NUL in the reason", "users.get", JSON.stringify({ nats: 5, reason: "a\u0000b" }), "reason"],
  ["a tab in by", "users.get", JSON.stringify({ nats: 5, reason: "x", by: "a\tb" }), "by"],
  ["a DEL in by", "users.get", JSON.stringify({ nats: 5, reason: "x", by: "eve\u007f" }), "by"],
  ["a C1 CSI in by", "users.get", JSON.stringify({ nats: 5, reason: "x", by: "e\u009b2J" }), "by"],
  [
    "by routes.yaml (the seed's marker)",
    "users.get",
    JSON.stringify({ nats: 5, reason: "x", by: "routes.yaml" }),
    "by",
  ],
];
for (const [what, route, body, field] of badCases) {
  t.test(
    `PUT cutover with ${what} is 400 problem+json naming ${field}, and changes nothing`,
    async (t) => {
      const before = { ...a.cutover.of(route) };
      const res = await call(`${a.adminUrl}/admin/routes/${route}/cutover`, {
        method: "PUT",
        body,
      });
      t.equal(res.status, 400);
      t.match(res.type, /^application\/problem\+json/);
      t.equal(res.body.field, field);
      t.same({ ...a.cutover.of(route) }, before);
    },
  );
}

t.test(
  "a rollback with a body that is not a JSON object is 400 naming the body, and rolls nothing back",
  async (t) => {
    const before = { ...a.cutover.of("users.get") };
    for (const body of ["null", "[]", '"bob"']) {
      const res = await call(`${a.adminUrl}/admin/routes/users.get/cutover/rollback`, {
        method: "POST",
        body,
      });
      t.equal(res.status, 400, `${body} is refused`);
      t.match(res.type, /^application\/problem\+json/);
      t.equal(res.body.field, "body");
    }
    t.same({ ...a.cutover.of("users.get") }, before);
  },
);

t.test(
  "a rollback body may give a reason, kept after the rolled-back time; other fields are a 400",
  async (t) => {
    const set = await call(`${a.adminUrl}/admin/routes/users.create/cutover`, {
      method: "PUT",
      body: JSON.stringify({ nats: 7, reason: "try writes" }),
    });
    t.equal(set.status, 200);
    const refused = await call(`${a.adminUrl}/admin/routes/users.create/cutover/rollback`, {
      method: "POST",
      body: JSON.stringify({ nats: 0, reason: "x" }),
    });
    t.equal(refused.status, 400);
    t.equal(refused.body.field, "nats");
    t.equal(a.cutover.of("users.create").nats, 7, "a refused rollback changes nothing");
    const rb = await call(`${a.adminUrl}/admin/routes/users.create/cutover/rollback`, {
      method: "POST",
      body: JSON.stringify({ reason: "  writes fail on NATS ", by: "dana" }),
    });
    t.equal(rb.status, 200);
    t.match(rb.body, { nats: 0, by: "dana", reason: /^rollback of \S+: writes fail on NATS$/ });
  },
);

t.test("PUT cutover on an unknown route is 404 problem+json naming the route", async (t) => {
  const res = await call(`${a.adminUrl}/admin/routes/nope.get/cutover`, {
    method: "PUT",
    body: JSON.stringify({ nats: 5, reason: "x" }),
  });
  t.equal(res.status, 404);
  t.match(res.type, /^application\/problem\+json/);
  t.equal(res.body.field, "name");
  t.match(res.body.detail, /nope\.get/);
});

t.test(
  "PUT cutover with a body that is not application/json is a 415, nothing changed",
  async (t) => {
    const before = a.cutover.of("users.get").nats;
    const res = await call(`${a.adminUrl}/admin/routes/users.get/cutover`, {
      method: "PUT",
      body: JSON.stringify({ nats: before === 42 ? 43 : 42, reason: "sent as text" }),
      type: "text/plain",
    });
    t.equal(res.status, 415);
    t.match(res.type, /^application\/problem\+json/);
    t.equal(res.body.code, "TURNOUT_ERR_UNSUPPORTED_MEDIA_TYPE");
    t.match(
      res.body.detail,
      /"text\/plain" is not supported: the admin API takes application\/json/,
    );
    const latin1 = await call(`${a.adminUrl}/admin/routes/users.get/cutover`, {
      method: "PUT",
      body: Buffer.from('{"nats":42,"reason":"caf\xe9"}', "latin1"),
      type: "application/json; charset=iso-8859-1",
    });
    t.equal(latin1.status, 415, "another charset is refused, not decoded lossily");
    t.match(latin1.body.detail, /charset "iso-8859-1" is not supported/);
    const invalid = await call(`${a.adminUrl}/admin/routes/users.get/cutover`, {
      method: "PUT",
      body: Buffer.from('{"nats":42,"reason":"caf\xe9"}', "latin1"),
    });
    t.equal(invalid.status, 400, "bytes that are not UTF-8 are a 400");
    t.match(invalid.body, { field: "body", detail: /not valid UTF-8/ }, "naming the body");
    t.equal(a.cutover.of("users.get").nats, before);
  },
);

t.test(
  "the cutover calls need the bearer token: 401 without or wrong, 403 when none is configured",
  async (t) => {
    const body = JSON.stringify({ nats: 50, reason: "x" });
    const url = `${a.adminUrl}/admin/routes/users.get/cutover`;
    t.equal((await call(url, { method: "PUT", body, token: null })).status, 401);
    t.equal((await call(url, { method: "PUT", body, token: "wrong" })).status, 401);
    t.equal((await call(`${a.adminUrl}/admin/routes`, { token: null })).status, 401);
    const locked = await replica(null);
    const res = await call(`${locked.adminUrl}/admin/routes/users.get/cutover`, {
      method: "PUT",
      body,
    });
    t.equal(res.status, 403);
    t.not(a.cutover.of("users.get").nats, 50, "nothing was changed");
  },
);

/** The bucket replica a writes through, for raw KV writes no API call makes. */
function kv() {
  const bucket = a.cutoverStore.bucket;
  if (bucket === undefined) throw new Error("replica a is not live");
  return bucket.kv;
}

t.test(
  "a rollback when every replica refused the latest value rolls back the value they apply",
  async (t) => {
    const before = { ...a.cutover.of("users.create") };
    const put = await call(`${a.adminUrl}/admin/routes/users.create/cutover`, {
      method: "PUT",
      body: JSON.stringify({ nats: 25, reason: "canary", by: "alice" }),
    });
    t.equal(put.status, 200);
    t.ok(await within(1000, () => b.cutover.of("users.create").nats === 25), "b applies 25");
    // A shadow on a write route without shadowWrites (another version wrote it): refused.
    const at = new Date().toISOString();
    const refused = { nats: 50, shadow: 10, by: "old-version", reason: "x", at };
    await kv().put("users.create", JSON.stringify(refused));
    const rb = await call(`${a.adminUrl}/admin/routes/users.create/cutover/rollback`, {
      method: "POST",
    });
    t.equal(rb.status, 200);
    t.match(rb.body, {
      rolledBack: { nats: 25, shadow: 0, by: "alice" },
      nats: before.nats,
      shadow: before.shadow,
      reason: `rollback of ${(put.body as { at: string }).at}`,
    });
    t.ok(
      await within(1000, () => b.cutover.of("users.create").nats === before.nats),
      "b applies the value before alice's",
    );
  },
);

t.test(
  "a rollback never brings back a deleted value: nothing to roll back right after a delete (409), routes.yaml's values across one",
  async (t) => {
    const url = `${a.adminUrl}/admin/routes/users.get/cutover`;
    const set = (nats: number, by: string) =>
      call(url, { method: "PUT", body: JSON.stringify({ nats, reason: `to ${nats}`, by }) });
    t.equal((await set(60, "bob")).status, 200);
    t.ok(await within(1000, () => b.cutover.of("users.get").nats === 60), "b applies 60");
    await kv().delete("users.get");
    t.ok(
      await within(1000, () => b.cutover.of("users.get").source === "file"),
      "b is back on routes.yaml's values",
    );
    const nothing = await call(`${url}/rollback`, { method: "POST" });
    t.equal(nothing.status, 409, "no live value to roll back");
    t.match(nothing.body.detail, /no earlier cutover value to roll back to/);
    t.same({ ...b.cutover.of("users.get") }, { nats: 10, shadow: 0, source: "file" });

    t.equal((await set(30, "carol")).status, 200);
    t.ok(await within(1000, () => b.cutover.of("users.get").nats === 30), "b applies 30");
    const rb = await call(`${url}/rollback`, { method: "POST" });
    t.equal(rb.status, 200);
    t.match(rb.body, { rolledBack: { nats: 30, by: "carol" }, nats: 10, shadow: 0 });
    t.ok(
      await within(1000, () => b.cutover.of("users.get").nats === 10),
      "b applies routes.yaml's 10, not the deleted 60",
    );
  },
);

t.test(
  "a rollback refuses control characters in reason and by, by routes.yaml, and either too long: 400 naming the field",
  async (t) => {
    const before = (await kv().get("users.get"))?.revision;
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ reason: "undo\nforged row" }, "reason"],
      [{ reason: "\u001b]0;owned\u0007" }, "reason"],
      [{ by: "eve\u0085" }, "by"],
      [{ by: "routes.yaml" }, "by"],
      [{ by: "x".repeat(201) }, "by"],
      [{ reason: "x".repeat(501) }, "reason"],
    ];
    for (const [body, field] of cases) {
      const res = await call(`${a.adminUrl}/admin/routes/users.get/cutover/rollback`, {
        method: "POST",
        body: JSON.stringify(body),
      });
      t.equal(res.status, 400, JSON.stringify(body));
      t.match(res.type, /^application\/problem\+json/);
      t.equal(res.body.field, field);
      const long = String(body[field]).length > 200;
      t.match(
        res.body.detail,
        long
          ? /is longer than/
          : field === "by" && body.by === "routes.yaml"
            ? /reserved/
            : /control/,
      );
    }
    t.equal((await kv().get("users.get"))?.revision, before, "nothing was written");
  },
);

t.test(
  "the history API lists deletes, purges and malformed values as rows of their kind, with revision and time",
  async (t) => {
    const url = `${a.adminUrl}/admin/routes/users.create/cutover`;
    const put = await call(url, { method: "PUT", body: JSON.stringify({ nats: 15, reason: "r" }) });
    t.equal(put.status, 200);
    await kv().delete("users.create");
    await kv().put("users.create", "{nats");
    await kv().put("users.create", JSON.stringify({ nats: 12.345, shadow: 0 }));
    const history = await call(`${url}/history`);
    t.equal(history.status, 200);
    const rows = history.body.history as Array<Record<string, unknown>>;
    const at = /^\d{4}-\d\d-\d\dT.*Z$/;
    t.match(rows.at(-4), { kind: "value", nats: 15, shadow: 0, by: "admin-api", reason: "r", at });
    t.same(Object.keys(rows.at(-3) ?? {}).sort(), ["at", "kind", "revision"]);
    t.match(rows.at(-3), { kind: "deleted", revision: Number, at });
    t.match(rows.at(-2), { kind: "ignored", revision: Number, at, why: "malformed: not JSON" });
    t.match(rows.at(-1), {
      kind: "ignored",
      why: "malformed: nats has at most two decimals, got 12.345",
    });
    const revisions = rows.map((row) => row.revision as number);
    t.same(
      revisions,
      [...revisions].sort((x, y) => x - y),
      "oldest first",
    );

    await kv().purge("users.create");
    const purged = await call(`${url}/history`);
    t.match(purged.body.history, [{ kind: "purged", revision: Number, at }]);
    t.equal((purged.body.history as unknown[]).length, 1, "a purge drops what came before");
  },
);
