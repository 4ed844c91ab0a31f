/** drainGraceMs: how long a drain waits for requests in flight, on its own (no listener). */
import t from "tap";
import { MAX_TIMER_MS } from "../../src/config/timer-limit.js";
import type { GatewayConfig, RouteConfig } from "../../src/config/types.js";
import { DEFAULT_REQUEST_TIMEOUT_MS } from "../../src/server/listener-options.js";
import { drainGraceMs } from "../../src/server/start.js";

/** A table of routes with the given timeout and retries; drainGraceMs reads nothing else. */
function tableOf(...routes: Array<{ timeoutMs: number; attempts: number }>): GatewayConfig {
  const configs = routes.map(
    ({ timeoutMs, attempts }) =>
      ({ timeoutMs, retry: { attempts, backoffMs: 50 }, idempotent: true }) as RouteConfig,
  );
  return { routes: configs } as unknown as GatewayConfig;
}

t.test(
  "the drain waits the slow-client cut-off plus twice the longest route deadline",
  async (t) => {
    const config = tableOf({ timeoutMs: 2000, attempts: 0 }, { timeoutMs: 500, attempts: 3 });
    t.equal(drainGraceMs({ config }), DEFAULT_REQUEST_TIMEOUT_MS + 2 * 2000);
    t.equal(drainGraceMs({ config, listener: { requestTimeoutMs: 1000 } }), 1000 + 2 * 2000);
  },
);

t.test(
  "the drain grace is at most the longest timer Node keeps, though twice a deadline that fits it may not",
  async (t) => {
    // (1 + 10) x 195225786 ms is just within 2^31 - 1 ms, as config allows; twice it is not.
    const config = tableOf({ timeoutMs: 195_225_786, attempts: 10 });
    t.equal(drainGraceMs({ config }), MAX_TIMER_MS);
  },
);
