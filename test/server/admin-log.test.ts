/**
 * The admin listener's log: one line per call under /admin (refused ones
 * too), none for probes and scrapes, which come every few seconds.
 */
import t from "tap";
import { infoLogLines } from "../helpers/log-lines.js";
import { usersGetRoute } from "../helpers/route-yaml.js";
import { waitUntil } from "../helpers/serve-process.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

const TOKEN = "admin-log-test-token";
const { logger, lines } = infoLogLines();
const stack = await startStack(t, writeRoutes(usersGetRoute()), { logger, adminToken: TOKEN });
const admin = (path: string, token?: string) =>
  fetch(`${stack.gateway.adminUrl}${path}`, {
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  });

interface Line {
  msg: string;
  requestId?: string;
  method?: string;
  path?: string;
  status?: number;
}
const logged = () => lines.map((line) => JSON.parse(line) as Line);

t.test("probes and scrapes write no log line", async (t) => {
  const before = lines.length;
  for (const path of ["/healthz", "/readyz", "/metrics", "/openapi.json"]) {
    const res = await admin(path);
    await res.arrayBuffer();
    t.ok(res.status < 500, `${path}: ${res.status}`);
  }
  // A line written for any of them would be there by the time another call's is.
  await (await admin("/admin/routes", TOKEN)).arrayBuffer();
  await waitUntil(() => logged().some((line) => line.msg === "admin call"), 5000);
  t.same(
    logged()
      .slice(before)
      .map((line) => line.msg),
    ["admin call"],
    "only the admin call's line",
  );
});

t.test("an admin call, refused or not, writes one line without its query string", async (t) => {
  const before = lines.length;
  const refused = await admin("/admin/routes?secret=1", "wrong-token");
  t.equal(refused.status, 401);
  const requestId = refused.headers.get("x-request-id");
  t.match(await refused.json(), { requestId }, "the problem names the id sent back");
  await waitUntil(() => lines.length > before, 5000);
  t.match(logged().slice(before), [
    { msg: "admin call", requestId, method: "GET", path: "/admin/routes", status: 401 },
  ]);
  t.notMatch(lines.slice(before).join("\n"), /secret|wrong-token/, "no query, no token");
});

t.test(
  "a successful admin call sends its request id back too, the caller's when it gave one",
  async (t) => {
    const own = await fetch(`${stack.gateway.adminUrl}/admin/routes`, {
      headers: { authorization: `Bearer ${TOKEN}`, "x-request-id": "ops-change-42" },
    });
    t.equal(own.status, 200);
    t.equal(own.headers.get("x-request-id"), "ops-change-42");
    await own.arrayBuffer();
    const made = await admin("/admin/routes", TOKEN);
    await made.arrayBuffer();
    t.match(made.headers.get("x-request-id"), /^[0-9a-f-]{36}$/, "a generated one otherwise");
  },
);
