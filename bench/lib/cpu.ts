/**
 * CPU time of processes from /proc/<pid>/stat (Linux only): utime + stime in
 * clock ticks, summed over a process and its descendants, so a scenario can
 * report CPU per request next to req/s.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

/** Clock ticks per second (`getconf CLK_TCK`); 100 on every common Linux. */
export function clockTicksPerSecond(): number {
  const out = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8", timeout: 2000 });
  const ticks = Number.parseInt(out.stdout ?? "", 10);
  return Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
}

/**
 * utime + stime of one process, in clock ticks, from the text of /proc/<pid>/stat.
 * The command name (field 2) is in parentheses and may hold spaces or ')', so the
 * fields are counted from the last ')': state is field 3, utime 14, stime 15.
 */
export function parseProcStat(text: string): number {
  const close = text.lastIndexOf(")");
  if (close < 0) throw new Error(`not a /proc/<pid>/stat line: ${text.slice(0, 80)}`);
  const fields = text
    .slice(close + 2)
    .trim()
    .split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) {
    throw new Error(`no utime/stime in /proc/<pid>/stat line: ${text.slice(0, 80)}`);
  }
  return utime + stime;
}

/** utime + stime of `pid` in clock ticks, or undefined when the process is gone. */
export function readCpuTicks(pid: number): number | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return undefined;
  }
}

/** The children of `pid` (all its threads' children), or [] when unknown. */
function childrenOf(pid: number): number[] {
  const found: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim();
      if (text !== "") for (const child of text.split(" ")) found.push(Number(child));
    }
  } catch {
    // process gone, or a kernel without /proc/<pid>/task/<tid>/children
  }
  return found;
}

/** `pids` and all their descendants (e.g. `--workers` processes), without duplicates. */
export function withDescendants(pids: readonly number[]): number[] {
  const seen = new Set<number>();
  const queue = [...pids];
  // Bounded: a process tree on this machine has far fewer than 10,000 members.
  while (queue.length > 0 && seen.size < 10_000) {
    const pid = queue.shift()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    queue.push(...childrenOf(pid));
  }
  return [...seen];
}

/** Per-process CPU ticks at one moment; a process that is gone reads as absent. */
export type CpuSnapshot = ReadonlyMap<number, number>;

export function snapshotCpu(pids: readonly number[]): CpuSnapshot {
  const snapshot = new Map<number, number>();
  for (const pid of pids) {
    const ticks = readCpuTicks(pid);
    if (ticks !== undefined) snapshot.set(pid, ticks);
  }
  return snapshot;
}

/**
 * CPU ticks spent between two snapshots of the same processes. A process that
 * exited in between contributes nothing (its ticks are lost), one that appeared
 * counts from zero.
 */
export function cpuTicksBetween(before: CpuSnapshot, after: CpuSnapshot): number {
  let total = 0;
  for (const [pid, ticks] of after) total += ticks - (before.get(pid) ?? 0);
  return total;
}
