import { Counter, Histogram, Registry } from "prom-client";
import t from "tap";
import { FastCounter, FastHistogram } from "../../src/observability/fast-metrics.js";

const BUCKETS = [0.01, 0.1, 1];
const SAMPLES = [0.005, 0.01, 0.05, 0.5, 2, 7];

t.test("a fast histogram scrapes exactly like prom-client's own", async (t) => {
  const reference = new Registry();
  const theirs = new Histogram({
    name: "h_seconds",
    help: "help",
    labelNames: ["route", "backend"],
    buckets: BUCKETS,
    registers: [reference],
  });
  const ours = new Registry();
  const fast = new FastHistogram("h_seconds", "help", ["route", "backend"], BUCKETS, ours);
  const cell = fast.cell("users.get", "nats");
  for (const value of SAMPLES) {
    theirs.labels("users.get", "nats").observe(value);
    cell.observe(value);
  }
  t.equal(await ours.metrics(), await reference.metrics());
});

t.test(
  "a fast counter scrapes exactly like prom-client's own, one series per label set",
  async (t) => {
    const reference = new Registry();
    const theirs = new Counter({
      name: "c_total",
      help: "help",
      labelNames: ["code"],
      registers: [reference],
    });
    const ours = new Registry();
    const fast = new FastCounter("c_total", "help", ["code"], ours);
    theirs.labels("200").inc(3);
    theirs.labels("404").inc();
    fast.cell("200").inc(3);
    fast.cell("404").inc();
    t.equal(await ours.metrics(), await reference.metrics());
    t.equal(fast.cell("200"), fast.cell("200"), "the same label values give the same cell");
  },
);

t.test(
  "fast metrics aggregate across processes like prom-client's (cluster workers)",
  async (t) => {
    const fast = new FastCounter("c_total", "help", ["code"], new Registry());
    fast.cell("200").inc(2);
    const json = fast.get();
    t.equal(json.aggregator, "sum");
    t.same(json.values, [{ labels: { code: "200" }, value: 2 }]);
  },
);
