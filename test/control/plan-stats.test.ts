import t from "tap";
import {
  decodeReport,
  encodeReport,
  LocalStats,
  latencyBoundsMs,
  MIXED,
  sameBounds,
  servedBy,
} from "../../src/control/plan-stats.js";
import { DURATION_BUCKETS } from "../../src/observability/buckets.js";
import { GatewayMetrics } from "../../src/observability/metrics.js";

t.test(
  "a report names the revision each route was served by, or MIXED when it changed within it",
  async (t) => {
    let revision = 5;
    const stats = new LocalStats(new GatewayMetrics(), ["users.get"], () => revision);
    t.same(stats.take().revisions, { "users.get": 5 });
    revision = 6;
    t.same(stats.take().revisions, { "users.get": MIXED }, "the value changed since the last");
    t.same(stats.take().revisions, { "users.get": 6 });
  },
);

t.test("the leader counts a report's figures only for the window's revision", async (t) => {
  const routes = {
    "users.get": { requests: 3, errors: 0, compared: 0, mismatches: 0, latency: [3, 0] },
  };
  const tagged = decodeReport(
    encodeReport({ replica: "r", routes, revisions: { "users.get": 6 } }),
  );
  t.ok(tagged && servedBy(tagged, "users.get", 6));
  t.notOk(tagged && servedBy(tagged, "users.get", 5), "another revision: not this window's");
  const mixed = decodeReport(
    encodeReport({ replica: "r", routes, revisions: { "users.get": MIXED } }),
  );
  t.notOk(mixed && servedBy(mixed, "users.get", 6));
  const junk = decodeReport(
    new TextEncoder().encode(
      JSON.stringify({ replica: "r", routes, revisions: { "users.get": "6" } }),
    ),
  );
  t.notOk(
    junk && servedBy(junk, "users.get", 6),
    "a revision that is not an integer counts as mixed",
  );
  const older = decodeReport(encodeReport({ replica: "r", routes }));
  t.equal(older?.revisions, undefined);
  t.ok(older && servedBy(older, "users.get", 6), "a report of an older version counts, as before");
});

t.test("latency bounds in ms are exact for a gate like 2007ms", async (t) => {
  const bounds = latencyBoundsMs(new GatewayMetrics({ extraDurationBoundsS: [2007 / 1000] }));
  t.ok(bounds.includes(2007), "not 2007.0000000000002");
});

t.test("a report's latencies are comparable only over the same bucket bounds", async (t) => {
  const routes = {};
  const defaults = DURATION_BUCKETS.map((s) => Math.round(s * 1e6) / 1e3);
  const withGate = latencyBoundsMs(new GatewayMetrics({ extraDurationBoundsS: [0.45] }));
  const older = decodeReport(encodeReport({ replica: "r", routes }))!;
  t.ok(sameBounds(older, defaults), "a report without bounds has the default ones");
  t.notOk(sameBounds(older, withGate));
  const tagged = decodeReport(encodeReport({ replica: "r", routes, bounds: withGate }))!;
  t.ok(sameBounds(tagged, withGate));
  t.notOk(sameBounds(tagged, defaults));
  const junk = decodeReport(
    new TextEncoder().encode(JSON.stringify({ replica: "r", routes, bounds: ["x"] })),
  )!;
  t.notOk(sameBounds(junk, defaults), "malformed bounds match none");
});
