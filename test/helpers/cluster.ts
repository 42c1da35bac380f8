// A self-hosted Temporal cluster of a test's own, through scripts/temporal-cluster.sh as a user runs it:
// its own state folder and its own pair of databases, so it never touches a cluster someone else runs here.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './processes';

const SCRIPT = join(REPO_ROOT, 'scripts/temporal-cluster.sh');
export const CLUSTER_SERVICES = ['frontend', 'history', 'matching', 'worker'] as const;
export type ClusterService = (typeof CLUSTER_SERVICES)[number];

export interface TestCluster {
  address: string;
  /** Seconds the last `start` took (the build excluded when it was already cached). */
  lastStartSeconds: number;
  /** What the last `start` said on stderr (its steps, and `dbchange setup`'s answer). */
  lastStartLog: string;
  /** `scripts/temporal-cluster.sh start`: starts every service that is not running. */
  start(options?: { fastDispatch?: boolean }): Promise<void>;
  stop(): Promise<void>;
  /** SIGKILLs one service's process and waits until it is gone. */
  kill(service: ClusterService): Promise<number>;
  isRunning(service: ClusterService): boolean;
  /** The last lines of a service's log, for a failure message. */
  logTail(service: ClusterService, lines?: number): string;
  /** Stops the services, drops both databases and removes the state folder. */
  destroy(): Promise<void>;
}

export async function startTestCluster(prefix: string, options: { fastDispatch?: boolean } = {}): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), `dbchange-${prefix}-cluster-`));
  const env = { ...process.env, DBCHANGE_CLUSTER_DIR: dir, DBCHANGE_CLUSTER_DATABASE: `dbchange_${prefix}_${process.pid}`, TEMPORAL_NAMESPACE: 'default' };
  const run = async (...args: string[]) => {
    try {
      return await promisify(execFile)('bash', [SCRIPT, ...args], { env, cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024 });
    } catch (error) {
      const failure = error as Error & { stderr?: string };
      throw new Error(`scripts/temporal-cluster.sh ${args.join(' ')} failed: ${failure.stderr ?? failure.message}`);
    }
  };
  const pidOf = (service: ClusterService) => Number(readFileSync(join(dir, `${service}.pid`), 'utf8').trim());
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] !== 'Z';
    } catch {
      return false;
    }
  };

  const cluster: TestCluster = {
    address: '',
    lastStartSeconds: 0,
    lastStartLog: '',
    async start(startOptions = options) {
      const started = Date.now();
      const { stdout, stderr } = await run('start', ...(startOptions.fastDispatch ? ['--fast-dispatch'] : []));
      cluster.address = stdout.trim().split('\n').at(-1)!;
      cluster.lastStartLog = stderr;
      cluster.lastStartSeconds = (Date.now() - started) / 1000;
    },
    async stop() {
      await run('stop');
    },
    async kill(service) {
      const pid = pidOf(service);
      process.kill(pid, 'SIGKILL');
      const deadline = Date.now() + 10_000;
      while (alive(pid)) {
        if (Date.now() > deadline) throw new Error(`the ${service} service (pid ${pid}) outlived SIGKILL for 10 s`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      return pid;
    },
    isRunning(service) {
      try {
        return alive(pidOf(service));
      } catch {
        return false;
      }
    },
    logTail(service, lines = 20) {
      try {
        return readFileSync(join(dir, 'logs', `${service}.log`), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
      } catch {
        return '(no log)';
      }
    },
    async destroy() {
      // DBCHANGE_KEEP_CLUSTER=1 keeps the databases and the logs of a failed run to look at; the services stop either way.
      if (process.env.DBCHANGE_KEEP_CLUSTER) {
        await run('stop');
        console.info(`cluster: kept ${dir} and its databases (DBCHANGE_KEEP_CLUSTER); remove with DBCHANGE_CLUSTER_DIR=${dir} DBCHANGE_CLUSTER_DATABASE=${env.DBCHANGE_CLUSTER_DATABASE} scripts/temporal-cluster.sh destroy`);
        return;
      }
      await run('destroy');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await cluster.start();
  } catch (error) {
    await run('destroy').catch(() => undefined);
    throw error;
  }
  return cluster;
}
