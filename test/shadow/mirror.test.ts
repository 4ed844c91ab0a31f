import { setTimeout as sleep } from "node:timers/promises";
import t from "tap";
import { loadConfigAndProtos } from "../../src/config/load.js";
import { TurnoutError } from "../../src/errors.js";
import { GatewayMetrics } from "../../src/observability/metrics.js";
import { type ComparedAnswer, Mirrors } from "../../src/shadow/mirror.js";
import { MismatchLog } from "../../src/shadow/mismatch-log.js";
import { ordersGetRoute } from "../helpers/route-yaml.js";
import { writeRoutes } from "../helpers/stack.js";

const { config, root } = loadConfigAndProtos(
  writeRoutes(
    ordersGetRoute({
      legacy: "http://127.0.0.1:1",
      cutover: "{ nats: 100, shadow: 100 }",
      breaker: "{ errorPercent: 50, volume: 5, resetAfter: 300ms }",
    }),
  ),
);
const ROUTE = "orders.get";
const REQUEST = { requestId: "r-1", method: "GET", path: "/v1/orders/o-1", bodyBytes: 0 };
const ANSWER: ComparedAnswer = {
  status: 200,
  body: '{"id":"o-1"}',
  contentType: "application/json",
};

function setUp() {
  const metrics = new GatewayMetrics();
  const mirrors = new Mirrors(root, config.routes, { metrics, log: new MismatchLog() });
  let calls = 0;
  /** Mirrors one request whose primary (NATS) answered ANSWER; resolves once it is counted. */
  async function mirror(call: () => Promise<ComparedAnswer>): Promise<boolean> {
    const othersInFlight = mirrors.inFlight;
    const handle = mirrors.start(ROUTE, "nats", REQUEST, () => {
      calls++;
      return call();
    });
    if (handle === undefined) return false;
    handle.comparePrimary(ANSWER);
    while (mirrors.inFlight > othersInFlight) await sleep(1);
    return true;
  }
  const sample = async (name: string, label: string) => {
    const text = await metrics.registry.metrics();
    const line = new RegExp(`^${name}\\{route="${ROUTE}",${label}\\} (\\d+)$`, "m");
    return Number(line.exec(text)?.[1] ?? 0);
  };
  return { mirror, sample, calls: () => calls };
}

const refused = () =>
  Promise.reject(new TurnoutError("TURNOUT_ERR_UPSTREAM_REFUSED", "connection refused"));

t.test(
  "a shadowed route's match, mismatch and error counts are exported at 0 before any mirror",
  async (t) => {
    const metrics = new GatewayMetrics();
    new Mirrors(root, config.routes, { metrics, log: new MismatchLog() });
    const text = await metrics.registry.metrics();
    for (const result of ["match", "mismatch", "error"]) {
      t.match(
        text,
        new RegExp(`^turnout_shadow_total\\{route="${ROUTE}",result="${result}"\\} 0$`, "m"),
      );
    }
  },
);

t.test("mirrors to a side that keeps refusing stop once its breaker opens", async (t) => {
  const { mirror, sample, calls } = setUp();
  for (let i = 0; i < 5; i++) t.ok(await mirror(refused), `mirror ${i} is tried`);
  t.equal(await sample("turnout_shadow_total", 'result="error"'), 5);

  for (let i = 0; i < 20; i++) t.notOk(await mirror(refused), "skipped while open");
  t.equal(calls(), 5, "no call is made while the breaker is open");
  t.equal(await sample("turnout_shadow_skipped_total", 'reason="breaker_open"'), 20);
});

t.test("after resetAfter one probe goes through, and its success resumes mirroring", async (t) => {
  const { mirror, sample, calls } = setUp();
  for (let i = 0; i < 5; i++) await mirror(refused);
  t.notOk(await mirror(refused), "open");
  await sleep(350);

  // The probe is slow: a mirror started meanwhile is refused by the half-open
  // breaker without being called, and counted as skipped.
  let answerProbe = (_answer: ComparedAnswer) => {};
  const probe = mirror(() => new Promise((resolve) => (answerProbe = resolve)));
  await sleep(5);
  await mirror(() => Promise.resolve(ANSWER));
  t.equal(calls(), 6, "only the probe was called");
  t.equal(await sample("turnout_shadow_skipped_total", 'reason="breaker_open"'), 2);
  answerProbe(ANSWER);
  t.ok(await probe, "the probe was mirrored");
  t.equal(await sample("turnout_shadow_total", 'result="match"'), 1, "and compared");

  t.ok(await mirror(() => Promise.resolve(ANSWER)), "mirroring resumes");
  t.equal(calls(), 7, "5 refused, the probe, one after");
  t.equal(await sample("turnout_shadow_total", 'result="match"'), 2);
  t.equal(await sample("turnout_shadow_skipped_total", 'reason="breaker_open"'), 2);
});

t.test("a mirror side answering 5xx opens its breaker too; 4xx answers do not", async (t) => {
  const { mirror, sample } = setUp();
  const notFound = { ...ANSWER, status: 404 };
  for (let i = 0; i < 6; i++) t.ok(await mirror(() => Promise.resolve(notFound)));
  t.equal(await sample("turnout_shadow_total", 'result="mismatch"'), 6, "compared, not skipped");

  const unavailable = { ...ANSWER, status: 503 };
  for (let i = 0; i < 10; i++) await mirror(() => Promise.resolve(unavailable));
  t.notOk(await mirror(() => Promise.resolve(ANSWER)), "open after the 5xx answers");
});

t.test(
  "a mirror answer over the cap is skipped as body_too_large, and never opens the mirror's breaker",
  async (t) => {
    const { mirror, sample, calls } = setUp();
    const tooLarge = () =>
      Promise.reject(new TurnoutError("TURNOUT_ERR_UPSTREAM_TOO_LARGE", "over the cap"));
    for (let i = 0; i < 10; i++) t.ok(await mirror(tooLarge), `mirror ${i} is tried`);
    t.equal(calls(), 10, "the breaker stayed closed: every mirror was called");
    t.equal(await sample("turnout_shadow_skipped_total", 'reason="body_too_large"'), 10);
    t.equal(await sample("turnout_shadow_total", 'result="error"'), 0, "not counted as errors");
  },
);

t.test(
  "a primary answer over the cap is skipped as body_too_large, not primary_failed",
  async (t) => {
    const metrics = new GatewayMetrics();
    const mirrors = new Mirrors(root, config.routes, { metrics, log: new MismatchLog() });
    const handle = mirrors.start(ROUTE, "legacy", REQUEST, () => Promise.resolve(ANSWER));
    handle?.primaryTooLarge();
    while (mirrors.inFlight > 0) await sleep(1);
    const text = await metrics.registry.metrics();
    t.match(text, /turnout_shadow_skipped_total\{route="orders.get",reason="body_too_large"\} 1/);
    t.notMatch(text, /reason="primary_failed"\} [1-9]/);
  },
);
