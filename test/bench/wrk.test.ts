import t from "tap";
import {
  luaString,
  pacingDelayMs,
  parseWrkOutput,
  parseWrkTime,
  wrkScript,
} from "../../bench/lib/wrk.js";

// Captured from wrk 4.1.0 (Debian) against bench/echo-server.ts, then the
// distribution edited to hold every unit wrk prints (us, ms, s) and the
// error lines it adds.
const SAMPLE = `Running 2s test @ http://127.0.0.1:39123/echo
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.71ms   12.94ms 176.70ms   97.24%
    Req/Sec    33.41k    14.29k   44.23k    80.00%
  Latency Distribution
     50%  812.00us
     75%    1.63ms
     90%    4.56ms
     99%    1.20s
  66365 requests in 2.00s, 11.20MB read
  Socket errors: connect 0, read 2, write 1, timeout 7
  Non-2xx or 3xx responses: 12
Requests/sec:  33141.36
Transfer/sec:      5.59MB
`;

t.test("parseWrkTime reads every unit wrk prints, in ms", async (t) => {
  t.equal(parseWrkTime("812.00us"), 0.812);
  t.equal(parseWrkTime("1.50ms"), 1.5);
  t.equal(parseWrkTime("2.01s"), 2010);
  t.equal(parseWrkTime("1.00m"), 60_000);
  t.equal(parseWrkTime("2.00h"), 7_200_000);
  t.throws(() => parseWrkTime("33.41k"), /not a wrk time/);
});

t.test("parseWrkOutput reads req/s, percentiles, totals and errors", async (t) => {
  const report = parseWrkOutput(SAMPLE);
  t.equal(report.rps, 33141.36);
  t.equal(report.requests, 66365);
  t.equal(report.durationS, 2);
  t.equal(report.p50Ms, 0.812, "µs converted to ms");
  t.equal(report.p99Ms, 1200, "s converted to ms");
  t.same(report.latencyMs, { "50": 0.812, "75": 1.63, "90": 4.56, "99": 1200 });
  t.equal(report.non2xx, 12);
  t.same(report.socketErrors, { connect: 0, read: 2, write: 1, timeout: 7 });
});

t.test("parseWrkOutput: a clean report has no errors", async (t) => {
  const clean = SAMPLE.replace(/ {2}Socket errors.*\n/, "").replace(/ {2}Non-2xx.*\n/, "");
  const report = parseWrkOutput(clean);
  t.equal(report.non2xx, 0);
  t.same(report.socketErrors, { connect: 0, read: 0, write: 0, timeout: 0 });
});

t.test("parseWrkOutput refuses a report without --latency", async (t) => {
  const noLatency = SAMPLE.slice(0, SAMPLE.indexOf("  Latency Distribution"));
  t.throws(() => parseWrkOutput(noLatency), /Latency Distribution/);
});

t.test("wrkScript quotes method, body and headers for Lua", async (t) => {
  t.equal(luaString('a"b\\c\n'), '"a\\034b\\092c\\010"');
  t.equal(luaString("é"), '"\\195\\169"', "UTF-8 bytes, not UTF-16 units");
  const script = wrkScript({
    method: "POST",
    url: "http://127.0.0.1:1/echo",
    body: '{"x":"]]"}',
    headers: { "content-type": "application/json" },
  });
  t.equal(
    script,
    'wrk.method = "POST"\n' +
      'wrk.body = "{\\034x\\034:\\034]]\\034}"\n' +
      'wrk.headers["content-type"] = "application/json"\n',
  );
});

t.test("a paced script gives wrk a random delay() of 9 ms on average per request", async (t) => {
  const script = wrkScript({ method: "GET", url: "http://127.0.0.1:1/" }, 9);
  t.equal(script, 'wrk.method = "GET"\nfunction delay()\n  return math.random(0, 18)\nend\n');
  t.notMatch(wrkScript({ method: "GET", url: "http://127.0.0.1:1/" }), /delay/, "unpaced: none");
});

t.test("pacingDelayMs: 50 connections at half of 11,000 req/s pause 9 ms each", async (t) => {
  t.equal(pacingDelayMs(11_000, 50, 0.5), 9, "50 * 1000 / 5,500 = 9.09 ms");
  t.equal(pacingDelayMs(30_000, 50, 0.5), 3, "3.33 ms rounds to 3");
  t.equal(pacingDelayMs(1e9, 50, 0.5), 1, "never 0: a pause of 0 would not pace at all");
  t.equal(pacingDelayMs(11_000, 50, 0.5, 1.7), 7, "the answer's 1.7 ms are part of each cycle");
});
