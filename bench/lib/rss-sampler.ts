// Peak resident memory of a process, sampled from /proc while it works (a single reading at the end would miss the peak).
import type { WorkerProcess } from './worker-process';

export interface RssSampler {
  /** Stops sampling; the highest reading in MB, the last one included. */
  stop(): number;
}

export function sampleRss(worker: WorkerProcess, everyMs = 500): RssSampler {
  let peak = 0;
  const sample = () => {
    // A worker that already exited has no /proc entry (or no VmRSS): that reading is simply missing.
    try {
      const mb = worker.rssMb();
      if (Number.isFinite(mb)) peak = Math.max(peak, mb);
    } catch {
      /* exited */
    }
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return peak;
    },
  };
}
