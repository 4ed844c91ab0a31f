import t from "tap";
import { parsePrometheus, sumBy, sumSamples } from "../../bench/lib/prom.js";

const TEXT = `# HELP turnout_requests_total Requests answered.
# TYPE turnout_requests_total counter
turnout_requests_total{route="users.create",backend="nats",code="200"} 120
turnout_requests_total{route="users.create",backend="legacy",code="200"} 3
turnout_requests_total{route="users.create",backend="gateway",code="503"} 2
turnout_requests_total{route="other",backend="nats",code="200"} 1000

turnout_shadow_total{route="users.create",result="match"} 118 1700000000000
odd{a="x\\"y\\\\z",b="line\\nbreak",} 1.5e3
process_start_time_seconds 1700000000
le_bucket{le="+Inf"} +Inf
`;

t.test("parsePrometheus reads names, labels (escapes included) and values", async (t) => {
  const samples = parsePrometheus(TEXT);
  t.equal(samples.length, 8, "comments and blank lines skipped");
  t.same(samples[0], {
    name: "turnout_requests_total",
    labels: { route: "users.create", backend: "nats", code: "200" },
    value: 120,
  });
  t.equal(samples[4]!.value, 118, "a timestamp after the value is ignored");
  t.same(samples[5], { name: "odd", labels: { a: 'x"y\\z', b: "line\nbreak" }, value: 1500 });
  t.same(samples[6]!.labels, {}, "no labels");
  t.equal(samples[7]!.value, Number.POSITIVE_INFINITY);
  t.throws(() => parsePrometheus("not a line at all {"), /not a metrics line/);
  t.throws(() => parsePrometheus('x{a="1" b} 2'), /bad labels/);
});

t.test("sumSamples and sumBy filter by labels", async (t) => {
  const samples = parsePrometheus(TEXT);
  t.equal(sumSamples(samples, "turnout_requests_total"), 1125);
  t.equal(sumSamples(samples, "turnout_requests_total", { route: "users.create" }), 125);
  t.equal(sumSamples(samples, "missing"), 0);
  t.same(sumBy(samples, "turnout_requests_total", "backend", { route: "users.create" }), {
    nats: 120,
    legacy: 3,
    gateway: 2,
  });
});
