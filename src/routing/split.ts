/**
 * The traffic split. A request's bucket in [0, 10000) is a hash of the route
 * name and its sticky key, so:
 * - it is the same on every replica and process (no seed, no per-process state);
 * - each route has its own cohort: the route name salts the hash, so users in
 *   the first 5% of one route are not the first 5% of every route;
 * - a bucket goes to NATS iff bucket < round(nats * 100), so raising the
 *   percentage only ever moves buckets legacy -> NATS (monotonic).
 *
 * Hash: FNV-1a 32-bit over the UTF-8 bytes of `route + "\0" + key`, then
 * murmur3's fmix32 finalizer. FNV-1a alone mixes poorly into the low bits
 * (the low k bits of its output depend only on the low k bits of each byte),
 * and `% 10000` reads the low bits; fmix32 spreads every input bit over all
 * 32. Modulo bias: 2^32 = 429496 * 10000 + 7296, so buckets below 7296 are
 * (429497 / 429496) as likely as the rest: a 2.3e-6 relative skew, negligible.
 */

export type Side = "nats" | "legacy";

export const BUCKETS = 10_000;

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** The bucket of `key` on `routeName`; a random bucket when there is no key. */
export function bucketOf(routeName: string, key: string | undefined): number {
  if (key === undefined) return randomBucket();
  return finish(fnv1a(fnv1a(FNV_OFFSET, routeName), key, true));
}

/**
 * bucketOf with the route name's part of the hash computed once: what the
 * request path should call.
 */
export function compileBucketOf(routeName: string): (key: string | undefined) => number {
  const salted = fnv1a(FNV_OFFSET, routeName);
  return (key) => (key === undefined ? randomBucket() : finish(fnv1a(salted, key, true)));
}

/** NATS serves the buckets below round(natsPercent * 100): 0 is none, 100 is all. */
export function decideSide(bucket: number, natsPercent: number): Side {
  return bucket < Math.round(natsPercent * 100) ? "nats" : "legacy";
}

/**
 * Whether this request is also mirrored. A fresh random draw per request, not
 * sticky: mirroring is invisible to the client, so nothing needs pinning, and a
 * sticky shadow would compare only one fixed cohort's data (and weigh its
 * busiest users most) where per-request sampling gives an unbiased sample of
 * the route's traffic and spreads the extra load evenly.
 */
export function shouldShadow(shadowPercent: number): boolean {
  return randomBucket() < Math.round(shadowPercent * 100);
}

function randomBucket(): number {
  return Math.floor(Math.random() * BUCKETS);
}

/**
 * FNV-1a over the UTF-8 encoding of `text`, continuing from `hash`; with
 * `separated`, a 0 byte goes first (the route/key separator). Encodes inline
 * rather than through TextEncoder to avoid a buffer per request; a lone
 * surrogate is hashed as U+FFFD, as TextEncoder would encode it.
 */
function fnv1a(hash: number, text: string, separated = false): number {
  if (separated) hash = Math.imul(hash, FNV_PRIME); // hash ^ 0 is hash
  for (let i = 0; i < text.length; i++) {
    let code = text.charCodeAt(i);
    if (code < 0x80) {
      hash = Math.imul(hash ^ code, FNV_PRIME);
      continue;
    }
    if (code >= 0xd800 && code <= 0xdfff) {
      const next = text.charCodeAt(i + 1);
      if (code <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        code = 0x10000 + ((code - 0xd800) << 10) + (next - 0xdc00);
        i++;
      } else {
        code = 0xfffd;
      }
    }
    hash = hashUtf8(hash, code);
  }
  return hash;
}

/** The multi-byte UTF-8 sequence of a code point >= 0x80. */
function hashUtf8(hash: number, code: number): number {
  if (code < 0x800) {
    hash = Math.imul(hash ^ (0xc0 | (code >> 6)), FNV_PRIME);
  } else if (code < 0x10000) {
    hash = Math.imul(hash ^ (0xe0 | (code >> 12)), FNV_PRIME);
    hash = Math.imul(hash ^ (0x80 | ((code >> 6) & 0x3f)), FNV_PRIME);
  } else {
    hash = Math.imul(hash ^ (0xf0 | (code >> 18)), FNV_PRIME);
    hash = Math.imul(hash ^ (0x80 | ((code >> 12) & 0x3f)), FNV_PRIME);
    hash = Math.imul(hash ^ (0x80 | ((code >> 6) & 0x3f)), FNV_PRIME);
  }
  return Math.imul(hash ^ (0x80 | (code & 0x3f)), FNV_PRIME);
}

/** murmur3's fmix32, then the unsigned value modulo BUCKETS. */
function finish(hash: number): number {
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return (hash >>> 0) % BUCKETS;
}
