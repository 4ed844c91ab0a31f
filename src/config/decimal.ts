/**
 * Numbers as written rather than as doubles. YAML reads 2.0000000000000001 as
 * 2 and 33.330000000000001 as 33.33, so "a whole number" or "at most two
 * decimals" checked on the double would pass what the file does not say; these
 * read the digits instead.
 */

/** A YAML 1.2 decimal number: `12`, `-1.50`, `.5`, `5.`, `25e-3`. */
const DECIMAL = /^[-+]?(\d*)(?:\.(\d*))?(?:[eE]([-+]?\d+))?$/;

/**
 * Decimal places the written number needs (`1.50` -> 1, `25e-3` -> 3, `1200e-2`
 * -> 0). Other notations YAML reads as numbers (`0x1F`, `0o17`) are whole: 0.
 */
export function decimalPlaces(text: string): number {
  const match = DECIMAL.exec(text.trim());
  if (match === null) return 0;
  const [, whole = "", fraction = "", exponent = "0"] = match;
  // value = digits x 10^-scale; each trailing zero of the digits is one place less.
  const digits = `${whole}${fraction}`;
  const zeros = digits.length - digits.replace(/0+$/, "").length;
  return Math.max(0, fraction.length - Number(exponent) - zeros);
}

/**
 * `text` (digits with an optional fraction, as in `1.5KiB`) times `factor`,
 * when that is a whole number exactly; undefined when it has a fraction.
 */
export function wholeProduct(text: string, factor: number): number | undefined {
  const [whole = "", fraction = ""] = text.split(".");
  const product = BigInt(`${whole}${fraction}`) * BigInt(factor);
  const divisor = 10n ** BigInt(fraction.length);
  if (product % divisor !== 0n) return undefined;
  return Number(product / divisor);
}
