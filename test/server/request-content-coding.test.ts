/**
 * Request bodies sent with a Content-Encoding: gzip, deflate and br are
 * decoded (within the route's bodyLimit) on either side, as legacy stacks take
 * them; another coding is a 415 naming it, a corrupt body a 400.
 */
import { brotliCompressSync, deflateSync, gzipSync } from "node:zlib";
import t from "tap";
import { sendJson, startLegacyServer } from "../helpers/legacy-server.js";
import { usersCreateRoute } from "../helpers/route-yaml.js";
import { type SeenRequest, startUsersWorker } from "../helpers/routes-and-workers.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

const legacy = await startLegacyServer((_request, res) => sendJson(res, 201, { id: "u-legacy" }));
t.teardown(() => legacy.close());

const ROUTES = `${usersCreateRoute({ bodyLimit: "4KiB" })}  - name: users.create.legacy
    method: POST
    path: /v1/old/:region/users
    subject: svc.users.{region}.create
    request: users.v1.CreateUserRequest
    response: users.v1.User
    body: user
    legacy: users
    cutover: { nats: 0, shadow: 0 }
`;
const seen: SeenRequest[] = [];
const stack = await startStack(t, writeRoutes(ROUTES, `legacy:\n  users: ${legacy.url}\n`));
const workers = startUsersWorker(stack.nc, stack.root, seen);
await stack.nc.flush();
t.teardown(async () => {
  for (const worker of workers) await worker.stop();
});

const post = (path: string, encoding: string, body: Uint8Array) =>
  fetch(`${stack.gateway.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", "content-encoding": encoding },
    body,
  });
const USER = Buffer.from('{"display_name":"Zoë"}');

t.test("a body in gzip, deflate or br reaches the worker decoded", async (t) => {
  for (const [encoding, body] of [
    ["gzip", gzipSync(USER)],
    ["deflate", deflateSync(USER)],
    ["br", brotliCompressSync(USER)],
    ["GZIP", gzipSync(USER)],
  ] as const) {
    const res = await post("/v1/regions/eu/users", encoding, body);
    t.equal(res.status, 201, encoding);
    await res.arrayBuffer();
    t.match(seen.at(-1)?.request, { user: { display_name: "Zoë" } }, encoding);
  }
});

t.test("legacy gets the decoded body, without the Content-Encoding it no longer has", async (t) => {
  const res = await post("/v1/old/eu/users", "gzip", gzipSync(USER));
  t.equal(res.status, 201);
  await res.arrayBuffer();
  const got = legacy.seen.at(-1);
  t.equal(got?.body, USER.toString());
  t.equal(got?.headers["content-encoding"], undefined);
});

t.test("another coding is a 415 naming it; a corrupt body a 400 naming its coding", async (t) => {
  const zstd = await post("/v1/regions/eu/users", "zstd", USER);
  t.equal(zstd.status, 415);
  t.match(await zstd.json(), {
    code: "TURNOUT_ERR_UNSUPPORTED_MEDIA_TYPE",
    detail: /content coding "zstd" is not supported/,
  });
  const corrupt = await post("/v1/regions/eu/users", "gzip", USER);
  t.equal(corrupt.status, 400);
  t.match(await corrupt.json(), {
    code: "TURNOUT_ERR_BAD_JSON",
    detail: /not valid gzip data/,
  });
});

t.test("a small body that decodes past the route's bodyLimit is a 413", async (t) => {
  const large = gzipSync(Buffer.from(`{"display_name":"${"x".repeat(64 * 1024)}"}`));
  t.ok(large.length < 4096, "small on the wire");
  const res = await post("/v1/regions/eu/users", "gzip", large);
  t.equal(res.status, 413);
  t.match(await res.json(), {
    code: "TURNOUT_ERR_BODY_TOO_LARGE",
    detail: /decodes \(gzip\) to more than the route's limit of 4096 bytes/,
  });
});
