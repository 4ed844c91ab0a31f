/** Loading .proto files: names in any spelling, imports as protoc -I resolves them. */
import { join } from "node:path";
import t from "tap";
import { loadProtos } from "../../src/codec/protos.js";

const A = 'syntax = "proto3";\npackage w;\nmessage A { string id = 1; }\n';
const B = 'syntax = "proto3";\npackage w;\nimport "a.proto";\nmessage B { A a = 1; }\n';

t.test(
  "a file listed as ./a.proto or x/../b.proto loads once when another imports it",
  async (t) => {
    const dir = t.testdir({ "a.proto": A, "b.proto": B, x: {} });
    const root = loadProtos([`${dir}/./a.proto`, `${join(dir, "x")}/../b.proto`]);
    t.equal(root.lookupType("w.B").fields.a?.resolvedType?.fullName, ".w.A");
  },
);
