/**
 * The stop signals of `turnout serve` (SIGTERM, SIGINT). main.ts installs the
 * catcher before it loads any command's modules, which takes about half a
 * second: a stop in that time (a deploy rolled back, Ctrl-C at once, a group
 * signal reaching a --workers worker still loading) then ends the start
 * cleanly instead of killing the process with Node's default. This module
 * imports nothing at run time, so it is loaded in no time.
 */
import type { Output } from "./check.js";

export const STOP_SIGNALS: readonly NodeJS.Signals[] = ["SIGTERM", "SIGINT"];

export interface StopRequest {
  /** Resolves with the first SIGTERM or SIGINT. */
  readonly signal: Promise<NodeJS.Signals>;
  /** Aborted by that signal: for start-up waits that must not hold up the stop. */
  readonly aborted: AbortSignal;
  /** That signal once received, else undefined (checked before starting anything). */
  received(): NodeJS.Signals | undefined;
}

/**
 * Catches the first SIGTERM or SIGINT, which starts the process's one
 * drain (or, before anything started, stops the start). Later ones are logged
 * and ignored rather than left to Node's default (exit at once, killing the
 * requests in flight): a second signal arrives without anybody asking twice
 * (a group signal under --workers, a wrapper such as npm forwarding Ctrl-C).
 * The drain is bounded by itself, and SIGKILL still stops a process at once.
 * The handlers stay until the process exits, so a late signal cannot turn a
 * clean exit into a kill either.
 */
export function onStopSignals(out: Output): StopRequest {
  const controller = new AbortController();
  let first: NodeJS.Signals | undefined;
  let resolveSignal: (signal: NodeJS.Signals) => void = () => {};
  const signal = new Promise<NodeJS.Signals>((resolve) => (resolveSignal = resolve));
  const handler = (received: NodeJS.Signals) => {
    if (first === undefined) {
      first = received;
      resolveSignal(received);
      controller.abort();
      return;
    }
    out.stderr.write(`turnout: ${received} received while stopping on ${first}; ignored\n`);
  };
  for (const stopSignal of STOP_SIGNALS) process.on(stopSignal, handler);
  return { signal, aborted: controller.signal, received: () => first };
}
