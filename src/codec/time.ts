/**
 * google.protobuf.Timestamp and Duration in their ProtoJSON string forms:
 * RFC 3339 (`1972-01-01T10:00:20.021-05:00` in, UTC `Z` with 0/3/6/9 fraction
 * digits out) and `"-1.500s"`. Ranges are protobuf's: years 0001-9999 and
 * +-315,576,000,000 s.
 */
import { BadReply, BadValue, show } from "./problems.js";

/** Seconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z. */
const MIN_TIMESTAMP = -62135596800;
const MAX_TIMESTAMP = 253402300799;
const MAX_DURATION = 315576000000;

const DURATION = /^(-)?(\d{1,12})(?:\.(\d{1,9}))?s$/;

export interface SecondsNanos {
  seconds: number;
  nanos: number;
}

/** Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Fraction digits as nanoseconds: "5" -> 500000000. */
function nanosOf(fraction: string | undefined): number {
  return fraction === undefined ? 0 : Number(fraction.padEnd(9, "0"));
}

/** The number in `text[start, start + count)` if all are digits, else -1. */
function digitsAt(text: string, start: number, count: number): number {
  let value = 0;
  for (let i = start; i < start + count; i++) {
    const c = text.charCodeAt(i) - 48;
    if (!(c >= 0 && c <= 9)) return -1;
    value = value * 10 + c;
  }
  return value;
}

/**
 * An RFC 3339 timestamp with `Z` or an offset, e.g. "2024-05-01T12:30:00.12Z";
 * throws BadValue naming the problem. Hand-parsed: it is on the request path.
 */
export function parseTimestamp(text: string): SecondsNanos {
  const year = digitsAt(text, 0, 4);
  const month = digitsAt(text, 5, 2);
  const day = digitsAt(text, 8, 2);
  const hour = digitsAt(text, 11, 2);
  const minute = digitsAt(text, 14, 2);
  const second = digitsAt(text, 17, 2);
  let pos = 19;
  let nanos = 0;
  if (text.charCodeAt(pos) === 46 /* . */) {
    let count = 0;
    while (count < 10 && digitsAt(text, pos + 1 + count, 1) >= 0) count++;
    if (count === 0 || count > 9) throw badTimestamp(text);
    nanos = digitsAt(text, pos + 1, count) * 10 ** (9 - count);
    pos += 1 + count;
  }
  let offset = 0;
  let offsetHours = 0;
  let offsetMinutes = 0;
  const zone = text.charCodeAt(pos);
  if (zone === 90 /* Z */) {
    pos += 1;
  } else if ((zone === 43 /* + */ || zone === 45) /* - */ && text.charCodeAt(pos + 3) === 58) {
    offsetHours = digitsAt(text, pos + 1, 2);
    offsetMinutes = digitsAt(text, pos + 4, 2);
    offset = (zone === 45 ? -1 : 1) * (offsetHours * 3600 + offsetMinutes * 60);
    pos += 6;
  } else {
    pos = -1;
  }
  if (
    pos !== text.length ||
    text.charCodeAt(4) !== 45 ||
    text.charCodeAt(7) !== 45 ||
    text.charCodeAt(10) !== 84 /* T */ ||
    text.charCodeAt(13) !== 58 ||
    text.charCodeAt(16) !== 58 ||
    (year | month | day | hour | minute | second | offsetHours | offsetMinutes) < 0
  ) {
    throw badTimestamp(text);
  }
  if (
    month < 1 ||
    month > 12 ||
    day < 1 ||
    day > daysInMonth(year, month) ||
    hour > 23 ||
    minute > 59 ||
    second > 59 ||
    offsetHours > 23 ||
    offsetMinutes > 59
  ) {
    throw new BadValue(`invalid Timestamp ${show(text)}: no such date or time`);
  }
  const seconds =
    daysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset;
  if (seconds < MIN_TIMESTAMP || seconds > MAX_TIMESTAMP) {
    throw new BadValue(`Timestamp out of range (0001-01-01 to 9999-12-31): ${show(text)}`);
  }
  return { seconds, nanos };
}

function badTimestamp(text: string): BadValue {
  return new BadValue(
    `invalid Timestamp ${show(text)}: expected RFC 3339 like "2024-05-01T12:30:00Z"`,
  );
}

/** A duration like "1.5s", "-0.000001s"; throws BadValue naming the problem. */
export function parseDuration(text: string): SecondsNanos {
  const m = DURATION.exec(text);
  if (m === null) {
    throw new BadValue(`invalid Duration ${show(text)}: expected seconds like "1.5s"`);
  }
  const seconds = Number(m[2]);
  if (seconds > MAX_DURATION) {
    throw new BadValue(`Duration out of range (+-${MAX_DURATION}s): ${show(text)}`);
  }
  const nanos = nanosOf(m[3]);
  if (m[1] === "-")
    return { seconds: seconds === 0 ? 0 : -seconds, nanos: nanos === 0 ? 0 : -nanos };
  return { seconds, nanos };
}

/** ".5", ".500123", ".500123456" or "": 0, 3, 6 or 9 digits as ProtoJSON prints them. */
function fraction(nanos: number): string {
  if (nanos === 0) return "";
  if (nanos % 1000000 === 0) return `.${String(nanos / 1000000).padStart(3, "0")}`;
  if (nanos % 1000 === 0) return `.${String(nanos / 1000).padStart(6, "0")}`;
  return `.${String(nanos).padStart(9, "0")}`;
}

/** "00" to "99", so printing a timestamp allocates no Date and pads nothing. */
const TWO_DIGITS = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, "0"));

/** RFC 3339 in UTC; throws BadReply when the value is outside Timestamp's range. */
export function formatTimestamp(seconds: number, nanos: number): string {
  if (
    !(seconds >= MIN_TIMESTAMP && seconds <= MAX_TIMESTAMP) ||
    !(nanos >= 0 && nanos <= 999999999)
  ) {
    throw new BadReply(`Timestamp out of range: seconds=${seconds} nanos=${nanos}`);
  }
  const days = Math.floor(seconds / 86400);
  const inDay = seconds - days * 86400;
  // H. Hinnant's civil_from_days.
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  const hour = Math.floor(inDay / 3600);
  const minute = Math.floor((inDay % 3600) / 60);
  return `${year < 1000 ? String(year).padStart(4, "0") : year}-${TWO_DIGITS[month]}-${TWO_DIGITS[day]}T${TWO_DIGITS[hour]}:${TWO_DIGITS[minute]}:${TWO_DIGITS[inDay % 60]}${fraction(nanos)}Z`;
}

/** "1.500s", "-0.000001s"; throws BadReply when out of range or the signs disagree. */
export function formatDuration(seconds: number, nanos: number): string {
  if (
    Math.abs(seconds) > MAX_DURATION ||
    !(Math.abs(nanos) <= 999999999) ||
    (seconds < 0 && nanos > 0) ||
    (seconds > 0 && nanos < 0)
  ) {
    throw new BadReply(`Duration out of range: seconds=${seconds} nanos=${nanos}`);
  }
  const sign = seconds < 0 || nanos < 0 ? "-" : "";
  return `${sign}${Math.abs(seconds)}${fraction(Math.abs(nanos))}s`;
}
