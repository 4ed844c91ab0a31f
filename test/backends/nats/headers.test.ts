import { MsgHdrsImpl } from "@nats-io/nats-core/internal";
import type { MsgHdrs } from "@nats-io/transport-node";
import t from "tap";
import { compileRequestHeaders } from "../../../src/backends/nats/headers.js";

/** Parses the wire bytes the way nats.js does on the receiving side. */
function onTheWire(headers: MsgHdrs): MsgHdrsImpl {
  return MsgHdrsImpl.decode((headers as unknown as { encode(): Uint8Array }).encode());
}

t.test(
  "request headers carry route, request id, trace context and the route's headers",
  async (t) => {
    const build = compileRequestHeaders("users.get", ["x-user-id", "x-lang"]);
    const h = onTheWire(
      build("r-1", {
        traceparent: "00-abc-def-01",
        tracestate: "k=v",
        "x-user-id": "42",
        "x-lang": ["fr", "de"],
        "x-other": "not forwarded",
      }),
    );
    t.equal(h.get("Turnout-Route"), "users.get");
    t.equal(h.get("X-Request-Id"), "r-1");
    t.equal(h.get("traceparent"), "00-abc-def-01");
    t.equal(h.get("tracestate"), "k=v");
    t.equal(h.get("x-user-id"), "42");
    t.same(h.values("x-lang"), ["fr", "de"], "a repeated header keeps every value");
    t.notOk(h.has("x-other"), "a header the route does not name stays behind");
  },
);

t.test("absent or empty trace context adds no trace headers", async (t) => {
  const h = onTheWire(compileRequestHeaders("users.get", [])("r-1", { tracestate: "" }));
  t.same(h.keys().sort(), ["Turnout-Route", "X-Request-Id"]);
});

t.test("non-ASCII header values reach the worker as the bytes the client sent", async (t) => {
  // Node hands header values over as latin1: one char per byte on the wire.
  const asSent = (text: string) => Buffer.from(text, "utf8").toString("latin1");
  const build = compileRequestHeaders("orders.get", ["x-tenant", "x-lang"]);
  const h = onTheWire(
    build("r-1", { "x-tenant": asSent("café"), "x-lang": [asSent("voilà"), "fr"] }),
  );
  t.equal(h.get("x-tenant"), "café", "not the double-encoded cafÃ©");
  t.same(h.values("x-lang"), ["voilà", "fr"], "a trailing 0xA0 byte (the end of à) is kept");
});

t.test("a message id goes into the headers as sent", async (t) => {
  const build = compileRequestHeaders("orders.create", []);
  const key = Buffer.from("orders.create:clé", "utf8").toString("latin1");
  const h = onTheWire(build("r-1", {}, false, key));
  t.equal(h.get("Nats-Msg-Id"), "orders.create:clé");
});
