import type { IncomingHttpHeaders } from "node:http";
import t from "tap";
import {
  ensureTraceparent,
  formatTraceparent,
  parseTraceparent,
  startTraceparent,
  traceIdOf,
} from "../../src/observability/trace.js";

const VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

t.test("parses a valid traceparent", async (t) => {
  t.same(parseTraceparent(VALID), {
    version: "00",
    traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
    parentId: "00f067aa0ba902b7",
    flags: "01",
  });
  // A later version may carry more fields.
  t.equal(parseTraceparent(`cc-${VALID.slice(3)}-what-the-future`)?.version, "cc");
});

t.test("refuses invalid ones", async (t) => {
  for (const bad of [
    undefined,
    "",
    [VALID, VALID],
    "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
    "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
    "not a traceparent",
  ]) {
    t.equal(parseTraceparent(bad), undefined, String(bad));
  }
});

t.test("starts a new valid, sampled traceparent each time", async (t) => {
  const a = startTraceparent();
  const b = startTraceparent();
  t.match(a, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  t.not(parseTraceparent(a), undefined);
  t.not(parseTraceparent(a)?.traceId, parseTraceparent(b)?.traceId);
});

t.test("ensureTraceparent keeps a valid one and starts one otherwise", async (t) => {
  const kept: IncomingHttpHeaders = { traceparent: VALID, tracestate: "a=1" };
  t.equal(ensureTraceparent(kept), VALID);
  t.same(kept, { traceparent: VALID, tracestate: "a=1" });

  const none: IncomingHttpHeaders = {};
  const started = ensureTraceparent(none);
  t.equal(none.traceparent, started);
  t.not(parseTraceparent(started), undefined);
  // Idempotent: a second call keeps the trace the first one started.
  t.equal(ensureTraceparent(none), started);

  const invalid: IncomingHttpHeaders = { traceparent: "garbage", tracestate: "a=1" };
  const replaced = ensureTraceparent(invalid);
  t.not(replaced, "garbage");
  t.not(parseTraceparent(replaced), undefined);
  t.equal(invalid.tracestate, undefined, "tracestate of an unparseable parent is dropped");

  const orphan: IncomingHttpHeaders = { tracestate: "orphan=1" };
  ensureTraceparent(orphan);
  t.equal(orphan.tracestate, undefined, "a tracestate without a traceparent is dropped");
});

t.test("formatTraceparent writes version 00 with the sampled flag only", async (t) => {
  const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
  const spanId = "00f067aa0ba902b7";
  t.equal(formatTraceparent(traceId, spanId, 1), VALID);
  t.equal(formatTraceparent(traceId, spanId, 0), `00-${traceId}-${spanId}-00`);
  t.equal(formatTraceparent(traceId, spanId, 0x81), VALID, "unknown flag bits are not passed on");
  t.same(parseTraceparent(formatTraceparent(traceId, spanId, 0)), {
    version: "00",
    traceId,
    parentId: spanId,
    flags: "00",
  });
});

t.test("traceIdOf", async (t) => {
  t.equal(traceIdOf(VALID), "4bf92f3577b34da6a3ce929d0e0e4736");
  t.equal(traceIdOf("garbage"), undefined);
  t.equal(traceIdOf(undefined), undefined);
});

t.test(
  "traces started across a refill of the random pool are all valid and distinct",
  async (t) => {
    const started = Array.from({ length: 600 }, () => startTraceparent());
    t.equal(new Set(started).size, 600);
    t.equal(started.filter((value) => parseTraceparent(value) === undefined).length, 0);
  },
);
