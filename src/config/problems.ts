/**
 * Collects every problem found while loading the route table, so one run reports
 * them all (as Fastify's initial-config-validation does) instead of one per restart.
 */
import type { LineCounter } from "yaml";
import { ConfigError, type ConfigProblem } from "../errors.js";

interface Entry {
  /** Offset in the YAML file; problems elsewhere (flags, .proto files) sort after. */
  readonly offset: number;
  readonly problem: ConfigProblem;
}

export class Problems {
  readonly #entries: Entry[] = [];
  /** Set once the YAML is parsed; until then locations are the bare file name. */
  lines: LineCounter | undefined;

  /** `file` is the path as the user gave it, so messages read like a compiler's. */
  constructor(readonly file: string) {}

  get count(): number {
    return this.#entries.length;
  }

  /** A problem at an offset of the YAML file. */
  add(offset: number, key: string, message: string, route?: string): void {
    this.#push(offset, this.locate(offset), key, message, route);
  }

  /** A problem outside the YAML file: a .proto file, a flag, an env var. */
  addAt(location: string, key: string, message: string, route?: string): void {
    this.#push(Number.MAX_SAFE_INTEGER, location, key, message, route);
  }

  locate(offset: number): string {
    if (this.lines === undefined) return this.file;
    const { line, col } = this.lines.linePos(offset);
    return `${this.file}:${Math.max(line, 1)}:${Math.max(col, 1)}`;
  }

  /** The 1-based line of an offset, to point at another place in the same file. */
  lineOf(offset: number): number {
    return Math.max(this.lines?.linePos(offset).line ?? 1, 1);
  }

  /** Problems in file order (traversal order differs: cross-route checks run last). */
  list(): ConfigProblem[] {
    return [...this.#entries].sort((a, b) => a.offset - b.offset).map((e) => e.problem);
  }

  throwIfAny(): void {
    if (this.#entries.length > 0) throw new ConfigError(this.list());
  }

  #push(offset: number, location: string, key: string, message: string, route?: string): void {
    const problem: ConfigProblem =
      route === undefined ? { location, key, message } : { location, route, key, message };
    this.#entries.push({ offset, problem });
  }
}
