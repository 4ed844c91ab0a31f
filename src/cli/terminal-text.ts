/**
 * Text from NATS (KV records, dead letters, a worker's error message) as a
 * command prints it: control characters as `\u001b`, so none reaches the
 * terminal (escapes, a forged row, a tab that shifts the columns).
 */
export function shown(text: string): string {
  return text.replace(/\p{Cc}/gu, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
