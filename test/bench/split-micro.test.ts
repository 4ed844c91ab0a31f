import t from "tap";
import { splitDecisionNs } from "../../bench/lib/split-micro.js";

t.test("splitDecisionNs times the decision: a small positive figure", async (t) => {
  const ns = splitDecisionNs(20_000, 3);
  t.ok(Number.isFinite(ns) && ns > 0, `${ns} ns`);
  // Generous: a hash of a short string; even a loaded CI machine is far below 50 µs.
  t.ok(ns < 50_000, `${ns} ns is below 50 µs`);
});
