import t from "tap";
import { formatDuration, parseDuration, parseSize } from "../../src/config/units.js";

t.test("durations in ms, s, m and h become milliseconds", async (t) => {
  t.equal(parseDuration("300ms"), 300);
  t.equal(parseDuration("2s"), 2000);
  t.equal(parseDuration("1m"), 60_000);
  t.equal(parseDuration("1h"), 3_600_000);
  t.equal(parseDuration("1.5s"), 1500, "decimals");
  t.equal(parseDuration("2 s"), 2000, "one space before the unit");
  t.equal(parseDuration(0), 0, "a bare 0 needs no unit");
});

t.test("a duration without a unit is refused with the fix", async (t) => {
  t.throws(() => parseDuration(2), { message: /needs a unit.*"2s" or "2ms"/ });
  t.throws(() => parseDuration("2"), { message: /must be a duration/ });
});

t.test("malformed durations and sub-millisecond ones are refused", async (t) => {
  for (const bad of ["2x", "-1s", "s", "", "1.5.0s", "2S", "1m30s"]) {
    t.throws(() => parseDuration(bad), { message: /must be a duration/ }, JSON.stringify(bad));
  }
  t.throws(() => parseDuration("1.5ms"), { message: /whole number of milliseconds/ });
  t.throws(() => parseDuration(true), { message: /must be a duration/ });
});

t.test("sizes: bare bytes, binary KiB/MiB/GiB and decimal KB/MB/GB", async (t) => {
  t.equal(parseSize(1024), 1024);
  t.equal(parseSize("1024"), 1024);
  t.equal(parseSize("100B"), 100);
  t.equal(parseSize("512KiB"), 512 * 1024);
  t.equal(parseSize("1MiB"), 1024 * 1024);
  t.equal(parseSize("2 MiB"), 2 * 1024 * 1024);
  t.equal(parseSize("1GiB"), 1024 ** 3);
  t.equal(parseSize("10KB"), 10_000);
  t.equal(parseSize("3MB"), 3_000_000);
  t.equal(parseSize("1.5KiB"), 1536);
});

t.test("malformed sizes and fractions of a byte are refused", async (t) => {
  for (const bad of ["10kb", "-1", "1TB", "MiB", "", "1 2"]) {
    t.throws(() => parseSize(bad), { message: /must be a size/ }, JSON.stringify(bad));
  }
  t.throws(() => parseSize("1.1KiB"), { message: /whole number of bytes/ });
  t.throws(() => parseSize(1.5), { message: /whole number of bytes/ });
});

t.test("sizes past 2^53 bytes are refused as too large, not as fractions", async (t) => {
  for (const big of [2 ** 53, "9007199254740993", 1e300, "9000000GiB"]) {
    t.throws(
      () => parseSize(big),
      { message: /^is too large: at most 9007199254740991 bytes/ },
      String(big),
    );
  }
  t.equal(parseSize(Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER);
});

t.test("a duration or size is whole exactly as written, not as a double rounds it", async (t) => {
  t.throws(() => parseDuration("1.0000000000000001s"), {
    message: /whole number of milliseconds/,
  });
  t.throws(() => parseSize("1.00000000000000001KiB"), { message: /whole number of bytes/ });
  t.throws(() => parseSize("1048576.00000000001"), { message: /whole number of bytes/ });
  t.equal(parseDuration("0.0001h"), 360, "an exact fraction of an hour");
  t.equal(parseSize("1.5000KiB"), 1536, "trailing zeros add no fraction");
  t.equal(parseSize("00002MB"), 2_000_000);
});

t.test("formatDuration writes ms in the largest unit that divides them", async (t) => {
  t.strictSame([3_600_000 * 596, 90_000, 2000, 1500, 0].map(formatDuration), [
    "596h",
    "90s",
    "2s",
    "1500ms",
    "0",
  ]);
});
