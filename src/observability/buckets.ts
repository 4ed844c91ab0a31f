/**
 * Bucket bounds of turnout_request_duration_seconds, in seconds. A module of
 * its own, free of prom-client, because the route table's checks read it too:
 * a plan's p99 gate must sit below the top bound to be able to fail.
 */
export const DURATION_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/**
 * DURATION_BUCKETS plus `extraSeconds` (the plans' `maxP99`s), sorted, each
 * once. With its gate as a bound, a plan tells "over 1% of answers took longer
 * than maxP99" from the counts exactly; between two bounds it could only
 * guess, and a guess above every observed latency rolled a step back.
 */
export function durationBuckets(extraSeconds: readonly number[] = []): number[] {
  return [...new Set([...DURATION_BUCKETS, ...extraSeconds])].sort((a, b) => a - b);
}
