import t from "tap";
import {
  clockTicksPerSecond,
  cpuTicksBetween,
  parseProcStat,
  readCpuTicks,
  snapshotCpu,
  withDescendants,
} from "../../bench/lib/cpu.js";

const linux = process.platform === "linux";

t.test("parseProcStat sums utime and stime, even with ') ' in the name", async (t) => {
  // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
  const line = "4242 (node ) x (y) S 1 4242 4242 0 -1 4194304 100 0 0 0 731 45 0 0 20 0 11 0 900";
  t.equal(parseProcStat(line), 776);
  t.throws(() => parseProcStat("garbage"), /not a \/proc/);
});

t.test(
  "readCpuTicks follows the CPU this process spends",
  { skip: !linux && "Linux only" },
  async (t) => {
    const hz = clockTicksPerSecond();
    t.ok(hz > 0, `CLK_TCK = ${hz}`);
    const ticks0 = readCpuTicks(process.pid);
    const usage0 = process.cpuUsage();
    t.type(ticks0, "number");
    // Burn 300 ms of CPU (by CPU time, the machine may be busy; at most 10 s of
    // wall time): far above the 10 ms granularity of the ticks.
    const deadline = Date.now() + 10_000;
    let x = 0;
    while (Date.now() < deadline) {
      for (let i = 0; i < 100_000; i++) x += Math.sqrt(x + i);
      const spent = process.cpuUsage(usage0);
      if (spent.user + spent.system >= 300_000) break;
    }
    t.ok(x > 0);
    const ticks1 = readCpuTicks(process.pid)!;
    const usage1 = process.cpuUsage(usage0);
    const procMs = ((ticks1 - ticks0!) / hz) * 1000;
    const nodeMs = (usage1.user + usage1.system) / 1000;
    t.ok(procMs >= 250, `/proc saw ${procMs} ms of CPU`);
    t.ok(Math.abs(procMs - nodeMs) <= 60, `/proc ${procMs} ms vs process.cpuUsage ${nodeMs} ms`);
  },
);

t.test(
  "snapshots: a gone process reads as absent, deltas sum",
  { skip: !linux && "Linux only" },
  async (t) => {
    t.equal(readCpuTicks(2 ** 22 + 12345), undefined, "no such pid");
    const pids = withDescendants([process.pid]);
    t.ok(pids.includes(process.pid));
    const before = snapshotCpu(pids);
    const after = new Map([...before].map(([pid, ticks]) => [pid, ticks + 3]));
    t.equal(cpuTicksBetween(before, after), 3 * before.size);
    t.equal(cpuTicksBetween(new Map(), new Map([[1, 5]])), 5, "a new process counts from zero");
  },
);
