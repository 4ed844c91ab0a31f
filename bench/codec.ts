/**
 * Micro-benchmark of the JSON <-> protobuf codec on users.v1.User (a ~300-byte
 * record), one core: JSON text -> protobuf bytes and protobuf bytes -> JSON text,
 * beside plain JSON.parse/JSON.stringify as the floor. Rates are per CPU second
 * of this process (best of 5 rounds).
 *
 *   npx tsx bench/codec.ts [seconds per case, default 2]
 */
import { join } from "node:path";
import {
  compileMessageCodec,
  compileRouteCodec,
  findMessage,
  loadProtos,
  parseJsonBody,
} from "../src/codec/index.js";
import type { JsonOptions } from "../src/config/types.js";

const seconds = Number(process.argv[2] ?? "2");
const root = loadProtos([join(import.meta.dirname, "..", "proto")]);
const User = findMessage(root, "users.v1.User")!;
const codec = compileMessageCodec(User);

const text = JSON.stringify({
  id: "u_01HZX3K9",
  region: "eu-west",
  displayName: "Ada Lovelace",
  email: "ada@example.com",
  tier: "TIER_PRO",
  balanceCents: "1234567",
  tags: ["admin", "beta"],
  address: {
    street: "12 St James's Square",
    city: "London",
    countryCode: "GB",
    postalCode: "SW1Y 4JH",
  },
  createdAt: "2024-05-01T12:30:00.120Z",
  nickname: "ada",
  verified: true,
  labels: { team: "engines" },
});
const bytes = User.encode(codec.fromJson(parseJsonBody(text), "$")).finish();
const legacyStyle: JsonOptions = {
  names: "proto",
  int64: "string",
  enums: "name",
  emitDefaults: true,
};
const canonical: JsonOptions = {
  names: "camel",
  int64: "string",
  enums: "name",
  emitDefaults: false,
};
const route = compileRouteCodec(root, {
  name: "users.create",
  request: "users.v1.CreateUserRequest",
  response: "users.v1.User",
  error: "users.v1.Error",
  body: "user",
  pathParams: ["region"],
  json: legacyStyle,
});
const params = { region: "eu-west" };
const query = {};

let sink = 0;
/**
 * Ops per CPU second, best of 5 rounds: CPU time (process.cpuUsage) rather
 * than wall time, so other processes on a busy machine distort less.
 */
function bench(name: string, fn: () => number): void {
  for (let i = 0; i < 20000; i++) sink += fn(); // warm up
  let best = 0;
  for (let round = 0; round < 5; round++) {
    const until = performance.now() + (seconds * 1000) / 5;
    const cpu = process.cpuUsage();
    let ops = 0;
    while (performance.now() < until) {
      for (let i = 0; i < 1000; i++) sink += fn();
      ops += 1000;
    }
    const used = process.cpuUsage(cpu);
    best = Math.max(best, ops / ((used.user + used.system) / 1e6));
  }
  const rate = Math.round(best).toLocaleString("en").padStart(10);
  console.log(`${name.padEnd(56)} ${rate} ops/s  ${(1e6 / best).toFixed(2).padStart(6)} µs/op`);
}

console.log(`users.v1.User: ${text.length} bytes of JSON, ${bytes.length} bytes of protobuf\n`);
bench("baseline: JSON.parse + JSON.stringify", () => JSON.stringify(JSON.parse(text)).length);
bench("parse+encode: parseJsonBody + fromJson + encode", () => {
  return User.encode(codec.fromJson(parseJsonBody(text), "$")).finish().length;
});
bench(
  "decode+print: decode + toJson (canonical)",
  () => codec.toJson(User.decode(bytes), canonical).length,
);
bench("decode+print: decode + toJson (proto names, defaults)", () => {
  return codec.toJson(User.decode(bytes), legacyStyle).length;
});
bench("route: encodeRequest (body: user, path param)", () => {
  return route.encodeRequest(params, query, parseJsonBody(text)).length;
});
bench("route: decodeResponse", () => route.decodeResponse(bytes).length);
if (sink === 0) console.log("");
