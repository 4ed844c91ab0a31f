import t from "tap";
import { checkGateway } from "../../bench/lib/gateway-check.js";
import { parsePrometheus } from "../../bench/lib/prom.js";

const route = "users.create";

function metrics(lines: string[]) {
  return parsePrometheus(lines.join("\n"));
}

t.test("all served by the expected side, nothing mirrored: no problem", async (t) => {
  const samples = metrics([
    `turnout_requests_total{route="${route}",backend="nats",code="200"} 500`,
    `turnout_requests_total{route="other",backend="legacy",code="200"} 7`,
  ]);
  const result = checkGateway(samples, { route, side: "nats", mirrored: false });
  t.equal(result.problem, undefined);
  t.equal(result.summary, "gateway served 500 (nats 500)");
  const wrongSide = checkGateway(samples, { route, side: "legacy", mirrored: false });
  t.match(wrongSide.problem, /500 requests not served by legacy/);
});

t.test("requests the client left (499) are reported, not a problem", async (t) => {
  const samples = metrics([
    `turnout_requests_total{route="${route}",backend="nats",code="200"} 90`,
    `turnout_requests_total{route="${route}",backend="nats",code="499"} 7`,
  ]);
  const result = checkGateway(samples, { route, side: "nats", mirrored: false });
  t.equal(result.problem, undefined);
  t.match(
    result.summary,
    /gateway served 97 \(nats 97\); 7 left by wrk at the ends of runs \(499\)/,
  );
});

t.test("non-2xx answers, unexpected mirrors and an empty route are problems", async (t) => {
  const samples = metrics([
    `turnout_requests_total{route="${route}",backend="nats",code="200"} 90`,
    `turnout_requests_total{route="${route}",backend="gateway",code="503"} 10`,
    `turnout_shadow_total{route="${route}",result="match"} 5`,
  ]);
  const result = checkGateway(samples, { route, side: "nats", mirrored: false });
  t.match(result.problem, /10 requests not served by nats/);
  t.match(result.problem, /10 answers were not 2xx/);
  t.match(result.problem, /5 requests were mirrored/);
  t.match(checkGateway([], { route, side: "nats", mirrored: false }).problem, /no request counted/);
});

t.test("shadow: mismatches are problems, skips only lower the share noted", async (t) => {
  const served = `turnout_requests_total{route="${route}",backend="nats",code="200"} 1000`;
  const good = checkGateway(
    metrics([
      served,
      `turnout_shadow_total{route="${route}",result="match"} 960`,
      `turnout_shadow_skipped_total{route="${route}",reason="in_flight_cap"} 40`,
    ]),
    { route, side: "nats", mirrored: true },
  );
  t.equal(good.problem, undefined);
  t.equal(good.note, "mirrored 96.0% of requests");
  t.match(good.summary, /mirrors compared 960 \(match 960\), skipped 40 \(in_flight_cap 40\)/);

  const bad = checkGateway(
    metrics([served, `turnout_shadow_total{route="${route}",result="mismatch"} 3`]),
    { route, side: "nats", mirrored: true },
  );
  t.match(bad.problem, /3 mirrors did not match/);
  const none = checkGateway(metrics([served]), { route, side: "nats", mirrored: true });
  t.match(none.problem, /no request was mirrored/);
});
