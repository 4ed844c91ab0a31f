/**
 * Counters and histograms for the request path. prom-client's labelled children
 * hash their label set on every `inc()`/`observe()`; these cells are plain
 * numbers resolved once per label set, and the registry reads them only when
 * scraped (they implement prom-client's metric `get()` contract, so they sit in
 * the same Registry, text format and cluster aggregation as any other metric).
 */
import type { Registry } from "prom-client";

type Labels = Record<string, string>;

interface MetricValue {
  labels: Labels;
  value: number;
  metricName?: string;
}

interface MetricSnapshot {
  name: string;
  help: string;
  type: "counter" | "histogram";
  values: MetricValue[];
  aggregator: "sum";
}

abstract class LabeledMetric<Cell> {
  readonly #cells = new Map<string, { labels: Labels; cell: Cell }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    registry: Registry,
  ) {
    // Duck-typed: the registry only calls `get()` and reads name/help/type.
    registry.registerMetric(this as never);
  }

  /** The cell for these label values (in labelNames order); resolve once, keep it. */
  cell(...values: string[]): Cell {
    const key = values.join("\u0000");
    let entry = this.#cells.get(key);
    if (entry === undefined) {
      const labels: Labels = {};
      this.labelNames.forEach((name, i) => {
        labels[name] = values[i] ?? "";
      });
      entry = { labels, cell: this.newCell() };
      this.#cells.set(key, entry);
    }
    return entry.cell;
  }

  protected entries(): Iterable<{ labels: Labels; cell: Cell }> {
    return this.#cells.values();
  }

  protected abstract newCell(): Cell;
  abstract get(): MetricSnapshot;
}

export class CounterCell {
  value = 0;
  inc(by = 1): void {
    this.value += by;
  }
}

export class FastCounter extends LabeledMetric<CounterCell> {
  readonly type = "counter";
  protected newCell(): CounterCell {
    return new CounterCell();
  }
  get(): MetricSnapshot {
    const values = [...this.entries()].map(({ labels, cell }) => ({ labels, value: cell.value }));
    return { name: this.name, help: this.help, type: "counter", values, aggregator: "sum" };
  }
}

export class HistogramCell {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }
  observe(value: number): void {
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        this.counts[i]!++;
        break;
      }
    }
    this.sum += value;
    this.count++;
  }
}

export class FastHistogram extends LabeledMetric<HistogramCell> {
  readonly type = "histogram";
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    readonly buckets: readonly number[],
    registry: Registry,
  ) {
    super(name, help, labelNames, registry);
  }
  protected newCell(): HistogramCell {
    return new HistogramCell(this.buckets);
  }
  get(): MetricSnapshot {
    const values: MetricValue[] = [];
    for (const { labels, cell } of this.entries()) {
      let cumulative = 0;
      this.buckets.forEach((bound, i) => {
        cumulative += cell.counts[i]!;
        values.push({
          labels: { le: String(bound), ...labels },
          value: cumulative,
          metricName: `${this.name}_bucket`,
        });
      });
      values.push({
        labels: { le: "+Inf", ...labels },
        value: cell.count,
        metricName: `${this.name}_bucket`,
      });
      values.push({ labels, value: cell.sum, metricName: `${this.name}_sum` });
      values.push({ labels, value: cell.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: "histogram", values, aggregator: "sum" };
  }
}
