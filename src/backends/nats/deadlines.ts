/**
 * One timer for every pending request instead of a setTimeout each. Entries are
 * kept in one FIFO list per timeout value: within a list deadlines only grow
 * (the clock is monotonic), so each list's head is its earliest deadline and a
 * single timer armed for the earliest head suffices. Adding and removing are
 * O(1) (intrusive doubly linked lists); a fire costs O(lists + expired).
 * Timeouts should come from a small set (route timeouts), as lists are per value.
 */

/** Fields an entry carries for DeadlineQueues; only DeadlineQueues touches them. */
export interface DeadlineEntry {
  deadline: number;
  dlPrev: DeadlineEntry | undefined;
  dlNext: DeadlineEntry | undefined;
  dlList: DeadlineList | undefined;
}

interface DeadlineList {
  readonly timeoutMs: number;
  head: DeadlineEntry | undefined;
  tail: DeadlineEntry | undefined;
}

export class DeadlineQueues<T extends DeadlineEntry> {
  readonly #lists = new Map<number, DeadlineList>();
  readonly #onExpire: (entry: T) => void;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Number.POSITIVE_INFINITY;

  constructor(onExpire: (entry: T) => void, now: () => number = () => performance.now()) {
    this.#onExpire = onExpire;
    this.#now = now;
  }

  /** Starts `entry`'s clock; it expires `timeoutMs` from now unless removed first. */
  add(entry: T, timeoutMs: number): void {
    let list = this.#lists.get(timeoutMs);
    if (list === undefined) {
      list = { timeoutMs, head: undefined, tail: undefined };
      this.#lists.set(timeoutMs, list);
    }
    entry.deadline = this.#now() + timeoutMs;
    entry.dlList = list;
    entry.dlPrev = list.tail;
    entry.dlNext = undefined;
    if (list.tail === undefined) list.head = entry;
    else list.tail.dlNext = entry;
    list.tail = entry;
    if (entry.deadline < this.#timerAt) this.#arm(entry.deadline);
  }

  /** Stops `entry`'s clock. The timer is left as is: a fire with nothing due only re-arms. */
  remove(entry: T): void {
    const list = entry.dlList;
    if (list === undefined) return;
    if (entry.dlPrev === undefined) list.head = entry.dlNext;
    else entry.dlPrev.dlNext = entry.dlNext;
    if (entry.dlNext === undefined) list.tail = entry.dlPrev;
    else entry.dlNext.dlPrev = entry.dlPrev;
    entry.dlPrev = entry.dlNext = entry.dlList = undefined;
    if (list.head === undefined) this.#lists.delete(list.timeoutMs);
  }

  /** Forgets every entry without expiring it and stops the timer. */
  clear(): void {
    this.#lists.clear();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
  }

  #arm(at: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = at;
    const delay = Math.max(0, Math.ceil(at - this.#now()));
    // unref: pending requests alone must not keep a process alive; the socket does.
    this.#timer = setTimeout(this.#fire, delay).unref();
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
    const now = this.#now();
    const expired: T[] = [];
    let next = Number.POSITIVE_INFINITY;
    for (const list of this.#lists.values()) {
      while (list.head !== undefined && list.head.deadline <= now) {
        const head = list.head as T;
        this.remove(head);
        expired.push(head);
      }
      if (list.head !== undefined && list.head.deadline < next) next = list.head.deadline;
    }
    if (next !== Number.POSITIVE_INFINITY) this.#arm(next);
    // Callbacks last, so one that adds or removes entries sees a consistent state.
    for (const entry of expired) this.#onExpire(entry);
  };
}
