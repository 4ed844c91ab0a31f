import t from "tap";
import {
  costPercent,
  pairedCost,
  ratioLines,
  type ScenarioFigures,
  signedPercent,
  spreadPercent,
} from "../../bench/lib/ratios.js";

function ok(name: string, rps: number, cpu: number, extra: Partial<ScenarioFigures> = {}) {
  return {
    name,
    status: "ok" as const,
    median: { rps, cpuUsPerReq: cpu },
    runs: [{ rps, cpuUsPerReq: cpu }],
    ...extra,
  };
}

t.test("costPercent, signedPercent, spreadPercent", async (t) => {
  const cost = costPercent({ rps: 10_000, cpuUsPerReq: 100 }, { rps: 9_500, cpuUsPerReq: 103 });
  t.equal(cost.rps.toFixed(6), "5.000000", "5% fewer req/s");
  t.equal(cost.cpu.toFixed(6), "3.000000", "3% more CPU per request");
  t.equal(signedPercent(2.345), "+2.3%");
  t.equal(signedPercent(-0.04), "-0.0%");
  t.equal(spreadPercent([90, 100, 110]), 10);
  t.equal(spreadPercent([100]), undefined);
});

t.test("the ratio lines, with every scenario present", async (t) => {
  const results: ScenarioFigures[] = [
    ok("fastify-echo", 20_000, 50, {
      halfLoad: { rps: 9_900, ofMax: 0.495, p50Ms: 0.5, p99Ms: 3 },
    }),
    ok("gateway-nats", 10_000, 100, {
      halfLoad: { rps: 4_812.4, ofMax: 0.48, p50Ms: 1.2, p99Ms: 3.0 },
    }),
    ok("gateway-nats-2w", 12_000, 110, {
      halfLoad: { rps: 6_100, ofMax: 0.51, p50Ms: 1, p99Ms: 3.5 },
    }),
    ok("gateway-nats-split", 9_800, 102),
    ok("gateway-legacy", 5_000, 200),
    ok("gateway-shadow", 4_000, 250),
    ok("nats-floor", 16_000, 70),
  ];
  const lines = ratioLines(results);
  t.same(
    lines.map((l) => l.line),
    [
      "gateway-nats / fastify-echo = 0.50 (target >= 0.5)",
      "gateway-nats-2w / fastify-echo = 0.60 (target >= 0.5)",
      "gateway-nats / gateway-legacy = 2.00 (target >= 1.3)",
      "nats-floor / fastify-echo = 0.80 (no target: the most a Node HTTP -> NATS route reaches here)",
      "gateway-nats / nats-floor = 0.63 (no target: what the gateway keeps of it after its production work)",
      "split decision cost = +2.0% req/s, +2.0% CPU/req (target < 5%)",
      "  (gateway-nats-split against gateway-nats, positive = dearer; run-to-run spread " +
        "(half range / median): req/s n/a (gateway-nats), n/a (gateway-nats-split); CPU/req n/a, n/a)",
      "shadow cost = +59.2% req/s, +145.1% CPU/req (gateway-shadow 250.0 µs/req all processes " +
        "vs gateway-nats-split 102.0; no target)",
      "fastify-echo p99 / p50 at half load = 6.00 (9,900 req/s = 0.49 of its median; " +
        "p50 0.50 ms, p99 3.00 ms) (target <= 3)",
      "gateway-nats p99 / p50 at half load = 2.50 (4,812 req/s = 0.48 of its median; " +
        "p50 1.20 ms, p99 3.00 ms) (target <= 3)",
      "gateway-nats-2w p99 / p50 at half load = 3.50 (6,100 req/s = 0.51 of its median; " +
        "p50 1.00 ms, p99 3.50 ms) (target <= 3)",
    ],
  );
  t.same(
    lines.map((l) => l.met),
    [true, true, true, null, null, true, null, null, false, true, false],
  );
});

t.test("missing or failed scenarios give n/a, not a number", async (t) => {
  const lines = ratioLines([
    ok("gateway-nats", 10_000, 100),
    { name: "gateway-legacy", status: "invalid", runs: [] },
  ]);
  t.equal(
    lines[0]!.line,
    "gateway-nats / fastify-echo = n/a (fastify-echo not run) (target >= 0.5)",
  );
  t.equal(
    lines[1]!.line,
    "gateway-nats-2w / fastify-echo = n/a (gateway-nats-2w not run) (target >= 0.5)",
  );
  t.equal(
    lines[2]!.line,
    "gateway-nats / gateway-legacy = n/a (gateway-legacy invalid) (target >= 1.3)",
  );
  t.equal(lines[2]!.value, null);
  t.same(
    [lines[3]!.line, lines[3]!.value, lines[3]!.met, lines[3]!.target],
    [
      "nats-floor / fastify-echo = n/a (nats-floor not run) (no target: the most a Node HTTP -> NATS route reaches here)",
      null,
      null,
      "",
    ],
    "a ratio without a target says what it shows, even when missing",
  );
  t.equal(lines[5]!.line, "split decision cost = n/a (gateway-nats-split not run)");
  const tail = lines.filter((l) => l.name.endsWith("at half load"));
  t.same(
    tail.map((l) => [l.line, l.value, l.met]),
    [
      [
        "fastify-echo p99 / p50 at half load = n/a (fastify-echo not run) (target <= 3)",
        null,
        null,
      ],
      ["gateway-nats p99 / p50 at half load = n/a (not measured) (target <= 3)", null, null],
      [
        "gateway-nats-2w p99 / p50 at half load = n/a (gateway-nats-2w not run) (target <= 3)",
        null,
        null,
      ],
    ],
    "a scenario without the paced run, or not run, has no tail figure",
  );
});

t.test("interleaved runs: the cost is the median of the per-pair costs", async (t) => {
  const before = {
    ...ok("gateway-nats", 0, 0),
    runs: [
      { rps: 10_000, cpuUsPerReq: 100 },
      { rps: 8_000, cpuUsPerReq: 120 },
      { rps: 9_000, cpuUsPerReq: 110 },
    ],
  };
  const after = {
    ...ok("gateway-nats-split", 0, 0),
    interleavedWith: ["gateway-nats"],
    runs: [
      { rps: 9_900, cpuUsPerReq: 101 }, // +1% / +1%
      { rps: 8_160, cpuUsPerReq: 117.6 }, // -2% / -2%
      { rps: 8_730, cpuUsPerReq: 113.3 }, // +3% / +3%
    ],
  };
  const cost = pairedCost(before, after);
  t.equal(cost.rps.toFixed(6), "1.000000");
  t.equal(cost.cpu.toFixed(6), "1.000000");
  t.equal(
    cost.noise,
    "runs interleaved; per run pair: req/s +1.0% -2.0% +3.0%, CPU/req +1.0% -2.0% +3.0%",
  );
  // Not interleaved: from the medians (0 here would divide by zero, so give medians).
  const alone = pairedCost(
    { ...before, median: { rps: 9_000, cpuUsPerReq: 110 } },
    { ...after, interleavedWith: undefined, median: { rps: 8_730, cpuUsPerReq: 113.3 } },
  );
  t.equal(alone.rps.toFixed(6), "3.000000");
  t.match(alone.noise, /^run-to-run spread/);
});

t.test("the split decision timed alone shows under the split line", async (t) => {
  const lines = ratioLines(
    [ok("gateway-nats", 10_000, 100), ok("gateway-nats-split", 10_000, 100)],
    50,
  );
  const alone = lines.find((l) => l.name === "split decision alone");
  t.equal(
    alone?.line,
    "  (the decision alone, in-process: 50 ns/request = 0.050% of gateway-nats's CPU/req)",
  );
  t.notOk(
    ratioLines([ok("gateway-nats", 10_000, 100), ok("gateway-nats-split", 10_000, 100)]).some(
      (l) => l.name === "split decision alone",
    ),
    "absent when not timed",
  );
});

t.test(
  "interleaved with the baseline: the ratio is the median of the run pairs' ratios",
  async (t) => {
    const echo = {
      ...ok("fastify-echo", 30_000, 30),
      runs: [
        { rps: 40_000, cpuUsPerReq: 25 },
        { rps: 20_000, cpuUsPerReq: 50 },
        { rps: 30_000, cpuUsPerReq: 33 },
      ],
    };
    const gateway = {
      ...ok("gateway-nats", 14_000, 70),
      interleavedWith: ["fastify-echo"],
      runs: [
        { rps: 16_000, cpuUsPerReq: 60 },
        { rps: 12_000, cpuUsPerReq: 80 },
        { rps: 14_000, cpuUsPerReq: 70 },
      ],
    };
    const [line] = ratioLines([echo, gateway]);
    // Pairs: 0.40, 0.60, 0.47; the ratio of the medians would say 0.47 too, by chance not by method.
    t.equal(line?.value?.toFixed(4), (14_000 / 30_000).toFixed(4));
    t.equal(
      line?.line,
      "gateway-nats / fastify-echo = 0.47 (median of run pairs: 0.40 0.60 0.47) (target >= 0.5)",
    );
    const skewed = { ...gateway, median: { rps: 16_000, cpuUsPerReq: 60 } };
    t.equal(
      ratioLines([echo, skewed])[0]?.value?.toFixed(4),
      (14_000 / 30_000).toFixed(4),
      "from the pairs, not from the medians",
    );
  },
);
