/**
 * The split decision alone, in-process: what route-handler.ts does per request
 * on a route with a legacy upstream and a sticky header (gather the sticky
 * facts, read the key, hash it to a bucket, compare with the percentage),
 * timed over many calls. A noise-free counterpart of the gateway-nats vs
 * gateway-nats-split comparison, whose differences of a few % are below the
 * run-to-run noise of a loaded machine.
 */
import { compileBucketOf, decideSide } from "../../src/routing/split.js";
import { compileStickyKey } from "../../src/routing/sticky.js";
import { USER_JSON, USER_RECORD } from "./payload.js";

/** Nanoseconds per decision: the median of `rounds` rounds of `iterations` calls. */
export function splitDecisionNs(iterations = 500_000, rounds = 7): number {
  const bucketOf = compileBucketOf("users.create");
  const stickyKeyOf = compileStickyKey({ kind: "header", name: "x-user-id" });
  // The headers wrk sends, as Node parses them.
  const headers = {
    host: "127.0.0.1:8080",
    "content-length": String(USER_JSON.length),
    "content-type": "application/json",
    "x-user-id": USER_RECORD.id,
  };
  const query = {};
  const perRound: number[] = [];
  let nats = 0;
  for (let r = 0; r < rounds; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) {
      const facts = { headers, query, ip: "127.0.0.1" };
      if (decideSide(bucketOf(stickyKeyOf(facts)), 100) === "nats") nats++;
    }
    perRound.push(Number(process.hrtime.bigint() - start) / iterations);
  }
  // Used, so that the loop cannot be optimized away; at 100% every call says "nats".
  if (nats !== iterations * rounds) throw new Error("split decision: not every call chose nats");
  perRound.sort((a, b) => a - b);
  return perRound[rounds >> 1]!;
}
