// Activity-side dbchange metrics, through the worker's meter (Prometheus when the worker has --metrics-address).
import { Context } from '@temporalio/activity';
import { METRIC } from '../core/metric-names';

export function recordMigrationApplied(environment: string, durationMs: number): void {
  const meter = Context.current().metricMeter;
  meter.createCounter(METRIC.migrationsApplied, 'migrations', 'post-deploy migrations applied').add(1, { environment });
  meter.createHistogram(METRIC.migrationDuration, 'int', 'ms', 'time to apply one migration, lock waits included').record(durationMs, { environment });
}

export function countLockTimeoutRetry(environment: string): void {
  Context.current().metricMeter.createCounter(METRIC.lockTimeoutRetries, 'retries', 'statements retried after lock_timeout').add(1, { environment });
}
