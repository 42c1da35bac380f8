// A self-hosted cluster of the benchmark's own through scripts/temporal-cluster.sh: its own state folder and databases.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './paths';

export interface BenchCluster {
  address: string;
  /** Stops the services and starts them again, with or without the README's dispatch settings. */
  restart(fastDispatch: boolean): Promise<{ startSeconds: number }>;
  destroy(): Promise<void>;
}

export async function startBenchCluster(fastDispatch: boolean): Promise<BenchCluster & { startSeconds: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'dbchange-bench-cluster-'));
  const env = { ...process.env, DBCHANGE_CLUSTER_DIR: dir, DBCHANGE_CLUSTER_DATABASE: `dbchange_bench_${process.pid}`, TEMPORAL_NAMESPACE: 'default' };
  const script = (...args: string[]) => promisify(execFile)('bash', [join(REPO_ROOT, 'scripts/temporal-cluster.sh'), ...args], { env, cwd: REPO_ROOT });
  const start = async (fast: boolean) => {
    const started = performance.now();
    const { stdout } = await script('start', ...(fast ? ['--fast-dispatch'] : []));
    return { address: stdout.trim().split('\n').at(-1)!, startSeconds: (performance.now() - started) / 1000 };
  };
  const first = await start(fastDispatch);
  return {
    ...first,
    async restart(fast) {
      await script('stop');
      return { startSeconds: (await start(fast)).startSeconds };
    },
    async destroy() {
      await script('destroy');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
