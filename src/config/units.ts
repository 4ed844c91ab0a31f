/**
 * Durations (`300ms`, `2s`, `1.5m`, `1h`) and sizes (`1024`, `512KiB`, `1MiB`, `10KB`).
 * Both throw an Error whose message says what is wrong, for the caller to locate.
 * A duration always needs a unit (is `timeout: 2` two seconds or two ms?); a bare
 * number of bytes is clear. KB/MB/GB are decimal (SI) and KiB/MiB/GiB binary, as in
 * Kubernetes quantities: an operator who means 1024 writes KiB.
 */
import { wholeProduct } from "./decimal.js";

const DURATION = /^(\d+(?:\.\d+)?) ?(ms|s|m|h)$/;
const MS_PER_UNIT: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

const SIZE = /^(\d+(?:\.\d+)?) ?(B|KB|KiB|MB|MiB|GB|GiB)?$/;
const BYTES_PER_UNIT: Readonly<Record<string, number>> = {
  B: 1,
  KB: 1e3,
  KiB: 1024,
  MB: 1e6,
  MiB: 1024 ** 2,
  GB: 1e9,
  GiB: 1024 ** 3,
};

/** Milliseconds in a duration string; `0` alone is accepted since it needs no unit. */
export function parseDuration(value: unknown): number {
  if (value === 0) return 0;
  if (typeof value === "number") {
    throw new Error(`needs a unit (ms, s, m or h), e.g. "${value}s" or "${value}ms"`);
  }
  const match = typeof value === "string" ? DURATION.exec(value.trim()) : null;
  if (match === null) {
    throw new Error('must be a duration such as "300ms", "2s", "1m" or "1h"');
  }
  // Exactly, not in doubles: 1.0000000000000001s is no whole number of milliseconds.
  const ms = wholeProduct(match[1]!, MS_PER_UNIT[match[2]!]!);
  if (ms === undefined) throw new Error("must be a whole number of milliseconds");
  return ms;
}

/** `ms` in the largest unit that divides it, as routes.yaml writes durations (`90s`, `1500ms`). */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0";
  for (const unit of ["h", "m", "s"]) {
    const size = MS_PER_UNIT[unit]!;
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** Past it a count of bytes is no longer exact (2^53 + 1 reads as 2^53). */
const TOO_LARGE = `is too large: at most ${Number.MAX_SAFE_INTEGER} bytes (8 PiB)`;

/** Bytes in a size: a whole number, or a string with a unit. */
export function parseSize(value: unknown): number {
  // 1e21 and up print in exponent form, which no size is written in.
  if (typeof value === "number" && value > Number.MAX_SAFE_INTEGER) throw new Error(TOO_LARGE);
  const text = typeof value === "number" ? String(value) : value;
  const match = typeof text === "string" ? SIZE.exec(text.trim()) : null;
  if (match === null) {
    throw new Error('must be a size such as 1024, "512KiB", "1MiB" or "10KB"');
  }
  const unit = BYTES_PER_UNIT[match[2] ?? "B"]!;
  if (Number(match[1]) * unit > Number.MAX_SAFE_INTEGER) throw new Error(TOO_LARGE);
  // Exactly, not in doubles: 1048576.00000000001 is no whole number of bytes.
  const bytes = wholeProduct(match[1]!, unit);
  if (bytes === undefined) throw new Error("must be a whole number of bytes");
  return bytes;
}
