/**
 * The admin listener answers unknown paths and methods as problem+json, like
 * the rest of its API; under /admin only after the token check, so that a
 * caller without the token cannot tell which admin paths exist.
 */
import t from "tap";
import { usersGetRoute } from "../helpers/route-yaml.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

const TOKEN = "admin-secret";
const locked = await startStack(t, writeRoutes(usersGetRoute()));
const guarded = await startStack(t, writeRoutes(usersGetRoute()), { adminToken: TOKEN });

const PROBES: ReadonlyArray<readonly [string, string]> = [
  ["GET", "/admin/nothing"],
  ["DELETE", "/admin/routes"],
  ["GET", "/%61dmin/nothing"],
  ["GET", "/admin/routes/users.get/nothing"],
];

async function call(base: string, method: string, path: string, token?: string) {
  const headers = token === undefined ? undefined : { authorization: `Bearer ${token}` };
  const res = await fetch(`${base}${path}`, { method, headers });
  const body = (await res.json()) as { code?: string; status?: number };
  return { res, body };
}

t.test(
  "an unknown /admin path or method without the token is the same 401 as a known one",
  async (t) => {
    const known = await call(guarded.gateway.adminUrl, "GET", "/admin/routes");
    t.equal(known.res.status, 401);
    for (const [method, path] of PROBES) {
      const { res, body } = await call(guarded.gateway.adminUrl, method, path);
      t.equal(res.status, 401, `${method} ${path}`);
      t.match(res.headers.get("content-type"), /^application\/problem\+json/);
      t.equal(res.headers.get("www-authenticate"), known.res.headers.get("www-authenticate"));
      t.equal(body.code, "TURNOUT_ERR_UNAUTHORIZED");
      const wrong = await call(guarded.gateway.adminUrl, method, path, "wrong-token");
      t.equal(wrong.res.status, 401, `${method} ${path} with a wrong token`);
    }
  },
);

t.test(
  "with no token configured, unknown /admin paths are locked like the rest: 403",
  async (t) => {
    for (const [method, path] of PROBES) {
      const { res, body } = await call(locked.gateway.adminUrl, method, path);
      t.equal(res.status, 403, `${method} ${path}`);
      t.equal(body.code, "TURNOUT_ERR_ADMIN_LOCKED");
    }
  },
);

t.test("with the token, an unknown /admin path or method is a 404 problem", async (t) => {
  for (const [method, path] of PROBES) {
    const { res, body } = await call(guarded.gateway.adminUrl, method, path, TOKEN);
    t.equal(res.status, 404, `${method} ${path}`);
    t.match(res.headers.get("content-type"), /^application\/problem\+json/);
    t.match(body, { code: "TURNOUT_ERR_NOT_FOUND", status: 404 });
  }
});

t.test("an unknown path outside /admin is a 404 problem without any token", async (t) => {
  for (const [method, path] of [
    ["GET", "/nothing"],
    ["POST", "/healthz"],
  ] as const) {
    const { res, body } = await call(guarded.gateway.adminUrl, method, path);
    t.equal(res.status, 404, `${method} ${path}`);
    t.match(res.headers.get("content-type"), /^application\/problem\+json/);
    t.equal(body.code, "TURNOUT_ERR_NOT_FOUND");
  }
});
