/**
 * The last mismatches of each route, for `GET /admin/routes/:name/mismatches`:
 * a fixed-size ring per route, so memory stays bounded however many requests
 * disagree (the counts themselves go to metrics).
 */
import type { Side } from "../routing/split.js";
import { cutPath, type FieldDiff } from "./json-diff.js";

export interface MismatchEntry {
  /** ISO 8601 time of the comparison. */
  readonly at: string;
  readonly requestId: string;
  readonly method: string;
  /** Without the query string; cut like a diff's path (its middle left out) past 300 characters. */
  readonly path: string;
  /** The side whose answer the client got. */
  readonly primary: Side;
  readonly diffs: readonly FieldDiff[];
}

interface Ring {
  readonly items: MismatchEntry[];
  /** Where the next entry goes once the ring is full. */
  next: number;
}

export const DEFAULT_MISMATCHES_KEPT = 50;

export class MismatchLog {
  readonly #rings = new Map<string, Ring>();

  constructor(readonly capacity = DEFAULT_MISMATCHES_KEPT) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    }
  }

  /** Keeps `entry`, dropping the route's oldest when `capacity` are already kept. */
  record(route: string, entry: Omit<MismatchEntry, "at">, at = new Date()): void {
    let ring = this.#rings.get(route);
    if (ring === undefined) {
      ring = { items: [], next: 0 };
      this.#rings.set(route, ring);
    }
    // Diffs come bounded (json-diff.ts); the request path is as long as the client made it.
    const kept: MismatchEntry = { at: at.toISOString(), ...entry, path: cutPath(entry.path) };
    if (ring.items.length < this.capacity) ring.items.push(kept);
    else {
      ring.items[ring.next] = kept;
      ring.next = (ring.next + 1) % this.capacity;
    }
  }

  /** The route's kept mismatches, newest first; [] for a route with none. */
  list(route: string): MismatchEntry[] {
    const ring = this.#rings.get(route);
    if (ring === undefined) return [];
    const { items, next } = ring;
    // Oldest first is items[next..] then items[..next]; reversed, that is newest first.
    return [...items.slice(next), ...items.slice(0, next)].reverse();
  }

  /** Forgets one route's mismatches, or every route's. */
  clear(route?: string): void {
    if (route === undefined) this.#rings.clear();
    else this.#rings.delete(route);
  }
}
