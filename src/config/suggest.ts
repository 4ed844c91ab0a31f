/** "Did you mean" hints for unknown keys, type names, fields and upstream names. */

/** The closest candidate, or undefined when none is close enough to be a likely typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const folded = fold(word);
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    // `body_limit`, `BodyLimit` and `bodylimit` all mean `bodyLimit`.
    if (fold(candidate) === folded) return candidate;
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  const limit = Math.max(1, Math.min(3, Math.floor(word.length / 3)));
  if (bestDistance <= limit) return best;
  // `certFile` for `cert`, `timeoutMs` for `timeout`: a known key with a suffix added.
  return candidates.find((c) => c.length >= 3 && folded.startsWith(fold(c)));
}

/** ` (did you mean "x"?)` or the empty string, to append to a message. */
export function didYouMean(word: string, candidates: readonly string[]): string {
  const match = closest(word, candidates);
  return match === undefined ? "" : ` (did you mean "${match}"?)`;
}

function fold(word: string): string {
  return word.toLowerCase().replace(/[-_]/g, "");
}

/** Edit distance where swapping two neighbours (`retyr`) counts as one typo. */
function editDistance(a: string, b: string): number {
  const rows = [Array.from({ length: b.length + 1 }, (_, j) => j)];
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min(rows[i - 1]![j]! + 1, row[j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        row[j] = Math.min(row[j]!, rows[i - 2]![j - 2]! + 1);
      }
    }
    rows.push(row);
  }
  return rows[a.length]![b.length]!;
}
