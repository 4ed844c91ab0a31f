import t from "tap";
import { interleavedGroups, SCENARIOS } from "../../bench/lib/scenarios.js";

t.test("the scenario list: unique names, the partner of each interleaved one exists", async (t) => {
  const names = SCENARIOS.map((s) => s.name);
  t.equal(new Set(names).size, names.length);
  for (const name of [
    "fastify-echo",
    "legacy-direct",
    "gateway-nats",
    "gateway-nats-2w",
    "gateway-nats-split",
    "gateway-legacy",
    "gateway-shadow",
    "nats-raw",
  ]) {
    t.ok(names.includes(name), name);
  }
  for (const s of SCENARIOS) {
    if (s.interleaveWith !== undefined) t.ok(names.includes(s.interleaveWith), s.name);
  }
});

t.test("interleavedGroups puts partners with the scenario they name, at its place", async (t) => {
  const list = [
    { name: "a" },
    { name: "b" },
    { name: "c", interleaveWith: "b" },
    { name: "d" },
    { name: "e", interleaveWith: "a" },
  ];
  const names = (groups: { name: string }[][]) => groups.map((g) => g.map((s) => s.name));
  t.same(names(interleavedGroups(list)), [["a", "e"], ["b", "c"], ["d"]]);
  t.same(names(interleavedGroups(list.filter((s) => s.name !== "b"))), [["a", "e"], ["c"], ["d"]]);
  t.same(names(interleavedGroups([])), []);
  const real = interleavedGroups(SCENARIOS).map((g) => g.map((s) => s.name));
  const baseline = real.find((g) => g[0] === "fastify-echo");
  t.same(
    baseline,
    ["fastify-echo", "gateway-nats", "gateway-nats-2w", "nats-floor", "gateway-nats-split"],
    "the NATS scenarios and the floor run beside the baseline (and so beside each other)",
  );
});
