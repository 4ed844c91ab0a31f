/**
 * A publish route on a NATS server without JetStream: nats.js reports it as it
 * reports a subject no stream stores, but the answer names the real cause, so
 * an operator enables JetStream instead of creating a stream that cannot exist.
 */
import t from "tap";
import { usersCreateRoute } from "../helpers/route-yaml.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

const ROUTES = usersCreateRoute({ subject: "events.users.{region}.created", mode: "publish" });

t.test("no JetStream on the server: a publish is a 503 NO_JETSTREAM saying so", async (t) => {
  const stack = await startStack(t, writeRoutes(ROUTES), { jetstream: false });
  const res = await fetch(`${stack.gateway.url}/v1/regions/eu/users`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ id: "u-1" }),
  });
  t.equal(res.status, 503);
  const problem = (await res.json()) as { code: string; detail: string; route: string };
  t.match(problem, { code: "TURNOUT_ERR_NO_JETSTREAM", route: "users.create" });
  t.match(problem.detail, /without JetStream.*events\.users\.eu\.created/);
});

t.test("no JetStream on the server: /readyz stays 200 and names the publish routes", async (t) => {
  const stack = await startStack(t, writeRoutes(ROUTES), { jetstream: false });
  const res = await fetch(`${stack.gateway.adminUrl}/readyz`);
  t.equal(res.status, 200);
  t.match(await res.json(), {
    notes: [
      "cutover: file values (no JetStream)",
      "publish routes answer 503 (no JetStream): users.create",
    ],
  });
});
