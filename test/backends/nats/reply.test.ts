import { headers, type MsgHdrs } from "@nats-io/transport-node";
import t from "tap";
import { interpretReply } from "../../../src/backends/nats/reply.js";

const body = new Uint8Array([1, 2, 3]);

function hdrs(pairs: Record<string, string>): MsgHdrs {
  const h = headers();
  for (const [k, v] of Object.entries(pairs)) h.set(k, v);
  return h;
}

const table: Array<[string, Record<string, string> | undefined, object]> = [
  ["no headers: 200 with the body", undefined, { kind: "ok", status: 200, data: body }],
  ["empty headers: 200", {}, { kind: "ok", status: 200, data: body }],
  ["Http-Status 201 overrides 200", { "Http-Status": "201" }, { kind: "ok", status: 201 }],
  ["Http-Status 299 is a success", { "Http-Status": "299" }, { kind: "ok", status: 299 }],
  ["an empty Http-Status is 200", { "Http-Status": "" }, { kind: "ok", status: 200 }],
  [
    "Http-Status 302 is a broken worker: 502",
    { "Http-Status": "302" },
    { kind: "error", status: 502 },
  ],
  [
    "Http-Status 404 is a broken worker: 502",
    { "Http-Status": "404" },
    { kind: "error", status: 502 },
  ],
  [
    "Http-Status text is a broken worker: 502",
    { "Http-Status": "ok" },
    { kind: "error", status: 502 },
  ],
  [
    "error code 404 with its message and body",
    { "Nats-Service-Error-Code": "404", "Nats-Service-Error": "user not found" },
    { kind: "error", status: 404, message: "user not found", data: body },
  ],
  ["error code 400 kept", { "Nats-Service-Error-Code": "400" }, { kind: "error", status: 400 }],
  ["error code 599 kept", { "Nats-Service-Error-Code": "599" }, { kind: "error", status: 599 }],
  ["error code 399 is 502", { "Nats-Service-Error-Code": "399" }, { kind: "error", status: 502 }],
  ["error code 200 is 502", { "Nats-Service-Error-Code": "200" }, { kind: "error", status: 502 }],
  ["error code 600 is 502", { "Nats-Service-Error-Code": "600" }, { kind: "error", status: 502 }],
  [
    "error code 404abc is 502",
    { "Nats-Service-Error-Code": "404abc" },
    { kind: "error", status: 502 },
  ],
  ["error code 4e2 is 502", { "Nats-Service-Error-Code": "4e2" }, { kind: "error", status: 502 }],
  [
    "an error code wins over Http-Status",
    { "Nats-Service-Error-Code": "409", "Http-Status": "201" },
    { kind: "error", status: 409 },
  ],
  [
    "header names in another case are understood",
    { "nats-service-error-code": "403", "nats-service-error": "no" },
    { kind: "error", status: 403, message: "no" },
  ],
];

for (const [name, pairs, expected] of table) {
  t.test(name, async (t) => {
    const outcome = interpretReply({ headers: pairs && hdrs(pairs), data: body });
    t.has(outcome, expected);
  });
}

t.test(
  "an invalid error code drops the body, whose type is unknown, and names the code",
  async (t) => {
    const outcome = interpretReply({
      headers: hdrs({ "Nats-Service-Error-Code": "abc", "Nats-Service-Error": "boom" }),
      data: body,
    });
    t.equal(outcome.kind, "error");
    t.equal(outcome.data.length, 0);
    t.match(outcome.kind === "error" ? outcome.message : "", /"abc".*boom/);
  },
);

t.test("an error code without a message gets one naming the status", async (t) => {
  const outcome = interpretReply({
    headers: hdrs({ "Nats-Service-Error-Code": "418" }),
    data: body,
  });
  t.equal(outcome.kind === "error" ? outcome.message : "", "worker error 418");
});

t.test(
  "an error message without a code is a broken worker (502), not an empty success",
  async (t) => {
    const cases: Array<Record<string, string>> = [
      { "Nats-Service-Error": "it broke" },
      { "Nats-Service-Error-Code": "", "Nats-Service-Error": "it broke" },
    ];
    for (const pairs of cases) {
      const outcome = interpretReply({ headers: hdrs(pairs), data: new Uint8Array(0) });
      t.has(outcome, { kind: "error", status: 502 });
      t.match(
        outcome.kind === "error" ? outcome.message : "",
        /Nats-Service-Error-Code "".*it broke/,
      );
    }
  },
);
