import type { AddressInfo } from "node:net";
import t from "tap";
import { createLegacyServer, userAnswer } from "../../bench/lib/legacy-app.js";
import { REGION, USER_JSON, USER_RECORD } from "../../bench/lib/payload.js";

// What the gateway answers on bench/routes.yaml for USER_JSON (the bench worker
// behind it), byte for byte: the shadow scenario compares the two.
const GATEWAY_ANSWER =
  '{"id":"u-7f3a9c","region":"eu-west-1","display_name":"Ada Lovelace","email":"ada@example.com",' +
  '"tier":"TIER_PRO","balance_cents":"1234567","tags":["beta","early"],"address":{"street":' +
  '"12 Engine St","city":"London","country_code":"GB","postal_code":"N1 9GU"},"created_at":' +
  '"2024-03-01T12:34:56Z","verified":true,"labels":{}}';

t.test("userAnswer prints the record as the gateway prints the worker's reply", async (t) => {
  t.equal(userAnswer(REGION, { ...USER_RECORD }), GATEWAY_ANSWER);
  t.equal(
    userAnswer("r", {}),
    '{"id":"u-new","region":"r","display_name":"","email":"","tier":"TIER_UNSPECIFIED",' +
      '"balance_cents":"0","tags":[],"verified":false,"labels":{}}',
    "defaults emitted, absent messages omitted, an id made",
  );
});

t.test("the backend answers the route, and refuses the rest", async (t) => {
  const server = createLegacyServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const post = (path: string, body: string) =>
    fetch(`${base}${path}`, {
      method: "POST",
      body,
      headers: { "content-type": "application/json" },
    });

  const ok = await post(`/v1/regions/${REGION}/users`, USER_JSON);
  t.equal(ok.status, 200);
  t.match(ok.headers.get("content-type"), /^application\/json/);
  t.equal(await ok.text(), GATEWAY_ANSWER);

  const encoded = await post("/v1/regions/eu%2Dnorth/users?x=1", "{}");
  t.equal(JSON.parse(await encoded.text()).region, "eu-north", "region URL-decoded, query ignored");

  t.equal((await post("/v1/regions/r/users", "{nope")).status, 400);
  t.equal((await post("/v1/regions/r/users", "[1]")).status, 400);
  t.equal((await post("/v1/orders", "{}")).status, 404);
  const get = await fetch(`${base}/v1/regions/r/users`);
  t.equal(get.status, 405);
  t.equal(get.headers.get("allow"), "POST");
  await get.text();
});
