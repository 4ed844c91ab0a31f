/**
 * turnout_payload_bytes compares what clients get (JSON) with what crossed NATS
 * (protobuf): a worker's error body that the gateway prints as JSON is counted
 * on both sides, as a success is, so the two series stay comparable; a reply
 * the client gets no JSON of counts on neither.
 */
import { headers } from "@nats-io/transport-node";
import t from "tap";
import { usersGetRoute } from "../helpers/route-yaml.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

t.test("a worker's error body printed as JSON is counted in both payload formats", async (t) => {
  const stack = await startStack(t, writeRoutes(usersGetRoute({ error: "users.v1.Error" })));
  const errorType = stack.root.lookupType("users.v1.Error");
  const body = errorType.encode({ error: "not_found", message: "no user 7" }).finish();
  stack.nc.subscribe("svc.users.eu.get", {
    callback: (_err, msg) => {
      const h = headers();
      h.set("Nats-Service-Error-Code", "404");
      h.set("Nats-Service-Error", "no user 7");
      msg.respond(body, { headers: h });
    },
  });
  await stack.nc.flush();
  const res = await fetch(`${stack.gateway.url}/v1/regions/eu/users/7`);
  t.equal(res.status, 404);
  const json = await res.text();
  t.same(JSON.parse(json), { error: "not_found", message: "no user 7" });
  const text = await (await fetch(`${stack.gateway.adminUrl}/metrics`)).text();
  const sum = (format: string) =>
    new RegExp(
      `^turnout_payload_bytes_sum\\{route="users.get",direction="response",format="${format}"\\} (\\d+)$`,
      "m",
    ).exec(text)?.[1];
  t.equal(sum("protobuf"), String(body.length), "the protobuf error body");
  t.equal(sum("json"), String(Buffer.byteLength(json)), "the JSON the client got");
});

t.test(
  "a worker error without a body (answered as problem+json) and an undecodable reply count in neither format",
  async (t) => {
    const stack = await startStack(t, writeRoutes(usersGetRoute()));
    stack.nc.subscribe("svc.users.eu.get", {
      callback: (_err, msg) => {
        const h = headers();
        h.set("Nats-Service-Error-Code", "500");
        h.set("Nats-Service-Error", "boom");
        msg.respond(new Uint8Array(), { headers: h });
      },
    });
    stack.nc.subscribe("svc.users.us.get", {
      callback: (_err, msg) => {
        msg.respond(new Uint8Array([0xff, 0xff, 0xff]));
      },
    });
    await stack.nc.flush();
    const failed = await fetch(`${stack.gateway.url}/v1/regions/eu/users/7`);
    t.equal(failed.status, 500);
    t.match(failed.headers.get("content-type"), /^application\/problem\+json/);
    const garbled = await fetch(`${stack.gateway.url}/v1/regions/us/users/7`);
    t.equal(garbled.status, 502);
    const text = await (await fetch(`${stack.gateway.adminUrl}/metrics`)).text();
    for (const format of ["protobuf", "json"]) {
      const count = new RegExp(
        `^turnout_payload_bytes_count\\{route="users.get",direction="response",format="${format}"\\} (\\d+)$`,
        "m",
      ).exec(text)?.[1];
      t.equal(count ?? "0", "0", `no response observed as ${format}`);
    }
  },
);
