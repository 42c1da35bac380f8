// CPU use from /proc (Linux) over an interval: how busy the machine was, and how much of it one process took. The
// fleet rollout shares two cores with PostgreSQL and the Temporal server; this says whether it was waiting for them.
import { readFileSync } from 'node:fs';

/** USER_HZ: the unit of /proc's CPU times on Linux. */
const TICKS_PER_SECOND = 100;

export interface CpuReading {
  at: number;
  machineBusyTicks: number;
  machineTotalTicks: number;
  processTicks: number;
}

export interface CpuUse {
  /** Share of all the machine's cores that was busy, in percent. */
  machineBusyPercent: number;
  /** The process's CPU time over the wall time: 1 is one core kept busy. */
  processCores: number;
}

export function readCpu(pid: number): CpuReading {
  // cpu  user nice system idle iowait irq softirq steal …
  const [user, nice, system, idle, iowait, irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = user + nice + system + idle + iowait + irq + softirq + steal;
  // /proc/<pid>/stat: the command name may hold spaces, so fields are counted after its closing parenthesis
  // (state is field 3; utime and stime are fields 14 and 15).
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { at: performance.now(), machineBusyTicks: total - idle - iowait, machineTotalTicks: total, processTicks: Number(fields[11]) + Number(fields[12]) };
}

export function cpuBetween(start: CpuReading, end: CpuReading): CpuUse {
  const seconds = (end.at - start.at) / 1000;
  return {
    machineBusyPercent: (100 * (end.machineBusyTicks - start.machineBusyTicks)) / Math.max(1, end.machineTotalTicks - start.machineTotalTicks),
    processCores: (end.processTicks - start.processTicks) / TICKS_PER_SECOND / Math.max(seconds, 0.001),
  };
}
