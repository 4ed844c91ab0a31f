/**
 * turnout_payload_bytes compares what clients get (JSON) with what crossed NATS
 * (protobuf): a worker's error body that the gateway prints as JSON is counted
 * on both sides, as a success is, so the two series stay comparable.
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
