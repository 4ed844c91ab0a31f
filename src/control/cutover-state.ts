/**
 * The live cutover percentages of every route, read on every request. They
 * start from routes.yaml; the control plane replaces them at run time. Each
 * route's entry is one small mutable object so the request path reads two
 * numbers without a lookup.
 */
import type { RouteConfig } from "../config/types.js";

export interface CutoverValues {
  /** Share served by NATS, 0-100 with two decimals. */
  nats: number;
  /** Share mirrored to the side that is not serving, 0-100. */
  shadow: number;
}

export type CutoverSource = "file" | "live";

export interface LiveCutover extends CutoverValues {
  source: CutoverSource;
}

export type CutoverListener = (route: string, values: Readonly<LiveCutover>) => void;

export class CutoverState {
  readonly #routes = new Map<string, LiveCutover>();
  readonly #listeners: CutoverListener[] = [];

  constructor(routes: readonly RouteConfig[]) {
    for (const route of routes) {
      this.#routes.set(route.name, {
        nats: route.cutover.nats,
        shadow: route.cutover.shadow,
        source: "file",
      });
    }
  }

  /** The live entry of a route (the same object for the process's lifetime). */
  of(route: string): Readonly<LiveCutover> {
    const entry = this.#routes.get(route);
    if (entry === undefined) throw new Error(`unknown route ${route}`);
    return entry;
  }

  routes(): string[] {
    return [...this.#routes.keys()];
  }

  set(route: string, values: CutoverValues, source: CutoverSource = "live"): void {
    const entry = this.#routes.get(route);
    if (entry === undefined) return;
    entry.nats = values.nats;
    entry.shadow = values.shadow;
    entry.source = source;
    for (const listener of this.#listeners) listener(route, entry);
  }

  /** Called now with every route's values, then on every change. */
  subscribe(listener: CutoverListener): void {
    this.#listeners.push(listener);
    for (const [route, entry] of this.#routes) listener(route, entry);
  }
}
