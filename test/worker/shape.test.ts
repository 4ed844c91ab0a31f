// Values protobufjs would encode altered rather than refuse: bytes it decodes
// as lenient base64 or wraps, maps it reads through Object.keys, and wrongly
// typed items and map values, whose problem must name the index or key. Each
// is a 500 naming the path, reported to onError, and nothing altered is sent.
import { connect, type NatsConnection } from "@nats-io/transport-node";
import protobuf from "protobufjs";
import t, { type Test } from "tap";
import { interpretReply } from "../../src/backends/nats/reply.js";
import { type NatsServer, startNatsServer } from "../../src/devtools/nats-server.js";
import { ServiceError, startWorker } from "../../src/worker/index.js";

const root = protobuf.parse(
  `syntax = "proto3";
  package s.v1;
  message Req { string id = 1; }
  message Part { string sku = 1; int32 qty = 2; bytes blob = 3; map<string, string> attrs = 4; }
  message Res {
    bytes blob = 1;
    repeated bytes blobs = 2;
    map<string, bytes> blob_by_name = 3;
    map<string, string> labels = 4;
    map<string, int32> counts = 5;
    repeated Part parts = 6;
    map<string, Part> part_by_sku = 7;
    Part part = 8;
    repeated string tags = 9;
  }
  message Err { bytes detail = 1; map<string, string> labels = 2; }`,
  { keepCase: true },
).root;
const Req = root.lookupType("s.v1.Req");
const Res = root.lookupType("s.v1.Res");

let server: NatsServer;
let client: NatsConnection;
t.before(async () => {
  server = await startNatsServer();
  client = await connect({ servers: server.url, noAsyncTraces: true });
});
t.teardown(async () => {
  await client.close();
  await server.stop();
});

/** A worker answering request id `id` with `results[id]`; a ServiceError is thrown as is. */
async function serve(t: Test, subject: string, results: Record<string, unknown>) {
  const reported: unknown[] = [];
  const nc = await connect({ servers: server.url, noAsyncTraces: true });
  const worker = startWorker<{ id: string }>({
    nc,
    root,
    subject,
    requestType: "s.v1.Req",
    responseType: "s.v1.Res",
    errorType: "s.v1.Err",
    service: { name: `shape-${subject.replaceAll(".", "-")}`, version: "1.0.0" },
    onError: (err) => reported.push(err),
    handle: (req) => {
      const result = results[req.id];
      if (result instanceof ServiceError) throw result;
      return result as object;
    },
  });
  t.teardown(async () => {
    await worker.stop();
    await nc.close();
  });
  await nc.flush();
  const get = (id: string) =>
    client.request(subject, Req.encode({ id }).finish(), { timeout: 2000 }).then(interpretReply);
  return { reported, get };
}

/** Each case answered 500 with exactly that message, and each one reported to onError. */
async function expectRefused(
  t: Test,
  get: (id: string) => Promise<ReturnType<typeof interpretReply>>,
  reported: unknown[],
  cases: Record<string, string>,
) {
  for (const [id, message] of Object.entries(cases)) {
    const reply = await get(id);
    t.has(reply, { kind: "error", status: 500 }, `${id}: 500`);
    t.equal(reply.kind === "error" && reply.message, message, `${id}: names the path`);
  }
  t.same(
    reported.map((err) => (err instanceof Error ? err.message : err)),
    Object.values(cases),
    "each one reported to onError with the same message",
  );
}

const RES = "response is not a valid s.v1.Res: ";
const NOT_BASE64 = "a string that is not base64 (a bytes field takes a Uint8Array or base64 text)";

t.test(
  "a bytes value protobufjs would alter (text that is not base64, a number that is not a byte, another object) is a 500 naming the path, never sent altered",
  async (t) => {
    const bad: Record<string, unknown> = {
      "not-base64": { blob: "not base64 !!!" },
      "partial-group": { blob: "hello" },
      "one-char": { blob: "a" },
      "mixed-alphabets": { blob: "AQ+_" },
      "over-255": { blob: [1, 2, 300] },
      negative: { blob: [-1] },
      fraction: { blob: [1.5] },
      "text-item": { blob: ["1"] },
      "length-object": { blob: { length: 2 } },
      uint16: { blob: new Uint16Array([300]) },
      number: { blob: 5 },
      repeated: { blobs: [Buffer.from("x"), "hello"] },
      "map-value": { blob_by_name: { k: [256] } },
      nested: { parts: [{ sku: "s" }, { blob: "a" }] },
      "error-body": new ServiceError(404, "nf", { detail: "hello" }),
    };
    const good = {
      blob: "AQL/",
      blobs: [
        Buffer.from([0, 255]),
        new Uint8Array([1, 2, 3]).subarray(1),
        "AQL_",
        [0, 128, 255],
        "",
        "AQ",
      ],
      blob_by_name: { e: "", p: "AQ==", u: new Uint8Array([7]) },
      part: { blob: [9] },
    };
    const { reported, get } = await serve(t, "s.bytes", { ...bad, good });
    await expectRefused(t, get, reported, {
      "not-base64": `${RES}blob: ${NOT_BASE64}`,
      "partial-group": `${RES}blob: ${NOT_BASE64}`,
      "one-char": `${RES}blob: ${NOT_BASE64}`,
      "mixed-alphabets": `${RES}blob: ${NOT_BASE64}`,
      "over-255": `${RES}blob[2]: 300 is not a byte (an integer 0-255)`,
      negative: `${RES}blob[0]: -1 is not a byte (an integer 0-255)`,
      fraction: `${RES}blob[0]: 1.5 is not a byte (an integer 0-255)`,
      "text-item": `${RES}blob[0]: a string is not a byte (an integer 0-255)`,
      "length-object": `${RES}blob: an Object is not bytes (a Uint8Array, base64 text or an array of 0-255)`,
      uint16: `${RES}blob: a Uint16Array is not bytes (a Uint8Array, base64 text or an array of 0-255)`,
      number: `${RES}blob: a number is not bytes (a Uint8Array, base64 text or an array of 0-255)`,
      repeated: `${RES}blobs[1]: ${NOT_BASE64}`,
      "map-value": `${RES}blob_by_name["k"][0]: 256 is not a byte (an integer 0-255)`,
      nested: `${RES}parts[1].blob: ${NOT_BASE64}`,
      "error-body": `ServiceError 404 body is not a valid s.v1.Err: detail: ${NOT_BASE64}`,
    });

    const reply = await get("good");
    t.equal(
      reply.kind,
      "ok",
      "Uint8Arrays, Buffers, base64 of either alphabet and byte arrays are sent",
    );
    const sent = Res.toObject(Res.decode(reply.data), { bytes: String });
    t.same(
      sent,
      {
        blob: "AQL/",
        blobs: ["AP8=", "AgM=", "AQL/", "AID/", "", "AQ=="],
        blob_by_name: { e: "", p: "AQ==", u: "Bw==" },
        part: { blob: "CQ==" },
      },
      "each sent with exactly its bytes",
    );
  },
);

t.test(
  "a map field given as a Map, an array or a class instance is a 500 naming it and asking for a plain object, never sent as {}",
  async (t) => {
    class Labels {
      team = "core";
    }
    const bad: Record<string, unknown> = {
      "map-of-strings": { labels: new Map([["team", "core"]]) },
      "map-of-ints": { counts: new Map([["a", 1]]) },
      "map-of-messages": { part_by_sku: [{ sku: "s" }] },
      "class-instance": { labels: new Labels() },
      nested: { parts: [{ sku: "s" }, { attrs: new Map([["k", "v"]]) }] },
      "map-for-a-message": { part: new Map([["sku", "s"]]) },
      "error-body": new ServiceError(409, "conflict", { labels: new Map([["k", "v"]]) }),
    };
    const counts: Record<string, number> = Object.create(null);
    counts["a"] = 1;
    const good = { labels: { team: "core" }, counts, part: { attrs: { k: "v" } } };
    const { reported, get } = await serve(t, "s.maps", { ...bad, good });
    const PLAIN = "is not a plain object: give a map field a plain object ({ key: value })";
    await expectRefused(t, get, reported, {
      "map-of-strings": `${RES}labels: a Map ${PLAIN}`,
      "map-of-ints": `${RES}counts: a Map ${PLAIN}`,
      "map-of-messages": `${RES}part_by_sku: an Array ${PLAIN}`,
      "class-instance": `${RES}labels: a Labels ${PLAIN}`,
      nested: `${RES}parts[1].attrs: a Map ${PLAIN}`,
      "map-for-a-message": `${RES}part: a Map is not a s.v1.Part`,
      "error-body": `ServiceError 409 body is not a valid s.v1.Err: labels: a Map ${PLAIN}`,
    });

    const reply = await get("good");
    t.equal(reply.kind, "ok", "plain objects, null-prototype ones too, are sent");
    t.same(Res.toObject(Res.decode(reply.data)), good, "with every entry");
  },
);

t.test(
  "a wrongly typed item of a repeated field or value of a map field is a 500 naming its index or key (items[1].qty, not items.qty)",
  async (t) => {
    const { reported, get } = await serve(t, "s.paths", {
      "map-int32-text": { counts: { a: 1, b: "abc" } },
      "map-int32-fraction": { counts: { a: 1.5 } },
      "map-string-number": { labels: { team: 5 } },
      "repeated-message": { parts: [{ qty: 1 }, { qty: "x" }] },
      "repeated-null": { parts: [{ qty: 1 }, null] },
      "map-message": { part_by_sku: { s: { qty: "x" } } },
      "repeated-string": { tags: ["a", 5] },
      "map-in-nested": { part: { attrs: { k: 5 } } },
      "map-in-repeated": { parts: [{}, {}, { attrs: { ok: "v", bad: true } }] },
      "not-an-array": { tags: "a" },
    });
    await expectRefused(t, get, reported, {
      "map-int32-text": `${RES}counts["b"]: integer expected`,
      "map-int32-fraction": `${RES}counts["a"]: integer expected`,
      "map-string-number": `${RES}labels["team"]: string expected`,
      "repeated-message": `${RES}parts[1].qty: integer expected`,
      "repeated-null": `${RES}parts[1]: object expected`,
      "map-message": `${RES}part_by_sku["s"].qty: integer expected`,
      "repeated-string": `${RES}tags[1]: string expected`,
      "map-in-nested": `${RES}part.attrs["k"]: string expected`,
      "map-in-repeated": `${RES}parts[2].attrs["bad"]: string expected`,
      "not-an-array": `${RES}tags: array expected`,
    });
  },
);
