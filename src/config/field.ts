/**
 * A cursor over the parsed YAML that knows where it is: its key path
 * (`routes[2].cutover.nats`), the route it belongs to and its offset in the file.
 * Readers report problems through it, so no check has to carry locations around.
 */
import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  type Node,
  type Pair,
  type Scalar,
} from "yaml";
import type { Problems } from "./problems.js";

export interface FieldContext {
  readonly doc: Document;
  readonly problems: Problems;
}

export interface Entry {
  readonly key: string;
  /** Offset of the key itself, where an unknown key is reported. */
  readonly keyOffset: number;
  readonly field: Field;
}

export class Field {
  readonly node: Node | undefined;

  constructor(
    readonly ctx: FieldContext,
    node: unknown,
    /** Dotted key path from the document root; empty for the root. */
    readonly path: string,
    /** Offset reported for problems; a missing key reports at its parent. */
    readonly offset: number,
    readonly route?: string,
  ) {
    // Aliases are followed so `*anchor` values are checked like written ones.
    const resolved = isAlias(node) ? node.resolve(ctx.doc) : node;
    this.node = resolved as Node | undefined;
  }

  get present(): boolean {
    return this.node !== undefined;
  }

  get isMap(): boolean {
    return isMap(this.node);
  }

  get isList(): boolean {
    return isSeq(this.node);
  }

  /** The scalar's value (null for `key:` with nothing after it); undefined otherwise. */
  get scalar(): unknown {
    return isScalar(this.node) ? this.node.value : undefined;
  }

  /**
   * A number as written, when the value is one: the value itself is the nearest
   * double (9007199254740993 reads as ...992, 2.0000000000000001 as 2, 0x10 as 16).
   */
  get numberText(): string | undefined {
    if (!isScalar(this.node) || typeof this.node.value !== "number") return undefined;
    return typeof this.node.source === "string" ? this.node.source : String(this.node.value);
  }

  /** What the value is, for messages: `"abc"`, `5`, `a list`... */
  describe(): string {
    if (isMap(this.node)) return "a map";
    if (isSeq(this.node)) return "a list";
    if (!isScalar(this.node)) return "nothing";
    const value = this.node.value;
    if (value === null) return "nothing";
    if (typeof value === "string") return JSON.stringify(value);
    // As written: 9007199254740993 reads as ...992, 0x10 as 16, 1e300 as 1e+300.
    return this.numberText ?? String(value);
  }

  problem(message: string): void {
    this.ctx.problems.add(this.offset, this.path, message, this.route);
  }

  /** The same node, reported as part of route `label`. */
  inRoute(label: string): Field {
    return new Field(this.ctx, this.node, this.path, this.offset, label);
  }

  /** The value under `key`: the first one when the key is given twice (reported by checkUniqueKeys). */
  child(key: string): Field {
    const pair = isMap(this.node)
      ? this.node.items.find((p) => isScalar(p.key) && keyText(p.key) === key)
      : undefined;
    if (pair === undefined) {
      return new Field(this.ctx, undefined, this.#childPath(key), this.offset, this.route);
    }
    return this.#valueOf(pair, key);
  }

  /** Every pair of the map in file order, repeated keys included. */
  entries(): Entry[] {
    if (!isMap(this.node)) return [];
    return this.node.items.map((pair) => {
      const key = isScalar(pair.key) ? keyText(pair.key) : String(pair.key);
      return { key, keyOffset: startOf(pair.key) ?? this.offset, field: this.#valueOf(pair, key) };
    });
  }

  #childPath(key: string): string {
    return this.path === "" ? key : `${this.path}.${key}`;
  }

  #valueOf(pair: Pair, key: string): Field {
    const offset = startOf(pair.value) ?? startOf(pair.key) ?? this.offset;
    // `key:` with no value parses to a null pair value: keep it present, as null.
    const value = pair.value ?? nullScalar(this.ctx.doc, offset);
    return new Field(this.ctx, value, this.#childPath(key), offset, this.route);
  }

  items(): Field[] {
    if (!isSeq(this.node)) return [];
    return this.node.items.map(
      (item, i) =>
        new Field(this.ctx, item, `${this.path}[${i}]`, startOf(item) ?? this.offset, this.route),
    );
  }
}

/** A key as written; a YAML 1.1 merge key is a Symbol, whose String() is `Symbol(<<)`. */
function keyText(key: Scalar): string {
  return typeof key.value === "symbol" ? (key.value.description ?? "") : String(key.value);
}

function startOf(node: unknown): number | undefined {
  const range = (node as Node | null | undefined)?.range;
  return range?.[0];
}

function nullScalar(doc: Document, offset: number): Node {
  const node = doc.createNode(null);
  node.range = [offset, offset, offset];
  return node;
}
