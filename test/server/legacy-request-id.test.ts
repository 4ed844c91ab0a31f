/** The request id on the legacy path: sent upstream, and the one the client gets back. */
import t from "tap";
import { sendJson, startLegacyServer } from "../helpers/legacy-server.js";
import { usersGetRoute } from "../helpers/route-yaml.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

const legacy = await startLegacyServer((_request, res) =>
  // A legacy service that names requests its own way.
  sendJson(res, 200, { id: "u-1" }, { "x-request-id": "legacy-own-id" }),
);
t.teardown(() => legacy.close());
const ROUTES = usersGetRoute({ legacy: "users", cutover: "{ nats: 0, shadow: 0 }" });
const stack = await startStack(t, writeRoutes(ROUTES, `legacy:\n  users: ${legacy.url}\n`));

t.test(
  "legacy gets the gateway's request id and the client gets it back, whatever legacy sets",
  async (t) => {
    for (const given of ["client-id-1", undefined, "not a safe id"]) {
      const res = await fetch(`${stack.gateway.url}/v1/regions/eu/users/u-1`, {
        headers: given === undefined ? {} : { "x-request-id": given },
      });
      t.equal(res.status, 200);
      await res.arrayBuffer();
      const id = res.headers.get("x-request-id");
      if (given === "client-id-1") t.equal(id, "client-id-1", "a safe client id is kept");
      else t.match(id, /^[0-9a-f-]{36}$/, `a made id when the client's is ${given ?? "missing"}`);
      t.equal(legacy.seen.at(-1)?.headers["x-request-id"], id, "legacy got the same id");
    }
  },
);
