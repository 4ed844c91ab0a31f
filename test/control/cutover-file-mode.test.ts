/**
 * A gateway whose NATS server has no JetStream runs on routes.yaml's values
 * and answers live changes 503, but a refused request is still a 400 naming
 * the field: values are checked before the KV is needed.
 */
import t from "tap";
import { call, cutoverRoutes, TOKEN, within } from "../helpers/cutover-fixture.js";
import { startStack } from "../helpers/stack.js";

const stack = await startStack(t, cutoverRoutes(), { jetstream: false, adminToken: TOKEN });
const gw = stack.gateway;
t.ok(await within(5000, () => gw.cutoverStore.mode === "file"), "on the file's values");

t.test(
  "without JetStream a PUT with refused values is 400 naming the field, not 503",
  async (t) => {
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ["users.get", { nats: 200, reason: "x" }, "nats"],
      ["users.get", { nats: 5, shadow: 12.345, reason: "x" }, "shadow"],
      ["users.get", { nats: 5 }, "reason"],
      ["users.get", { nats: 5, reason: "a\nb" }, "reason"],
      ["users.get", { nats: 5, reason: "x", by: "" }, "by"],
      ["users.get", { nats: 5, reason: "x", by: "routes.yaml" }, "by"],
      ["users.create", { nats: 0, shadow: 5, reason: "x" }, "shadow"],
      ["orders.get", { nats: 50, reason: "x" }, "nats"],
    ];
    for (const [route, body, field] of cases) {
      const res = await call(`${gw.adminUrl}/admin/routes/${route}/cutover`, {
        method: "PUT",
        body: JSON.stringify(body),
      });
      t.equal(res.status, 400, `${route} ${JSON.stringify(body)}`);
      t.match(res.type, /^application\/problem\+json/);
      t.equal(res.body.field, field);
    }
    const valid = await call(`${gw.adminUrl}/admin/routes/users.get/cutover`, {
      method: "PUT",
      body: JSON.stringify({ nats: 20, reason: "x" }),
    });
    t.equal(valid.status, 503, "a valid change still needs JetStream");
    t.equal(gw.cutover.of("users.get").nats, 10, "nothing changed");
  },
);

t.test("without JetStream a rollback with a refused body is 400 naming the field", async (t) => {
  for (const [body, field] of [
    [{ by: "" }, "by"],
    [{ reason: "\u001b[2J" }, "reason"],
  ] as const) {
    const res = await call(`${gw.adminUrl}/admin/routes/users.get/cutover/rollback`, {
      method: "POST",
      body: JSON.stringify(body),
    });
    t.equal(res.status, 400, JSON.stringify(body));
    t.equal(res.body.field, field);
  }
});
