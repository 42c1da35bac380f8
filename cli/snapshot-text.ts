// A pipeline snapshot as a release manager reads it: where it stands, each migration, QA, every decision.
import { describeOutOfOrder } from '../core/out-of-order';
import type { FleetStatus } from '../core/fleet-progress';
import type { PipelineStatus, TargetResult } from '../core/pipeline';

export function describeProgress(snapshot: PipelineStatus): string {
  const where = [snapshot.environment, snapshot.migration && `migration ${snapshot.migration.index} of ${snapshot.migration.total} (${snapshot.migration.version})`]
    .filter(Boolean)
    .join(', ');
  return `[${snapshot.stage}]${where ? ` ${where}` : ''}${snapshot.waitingFor ? `: ${snapshot.waitingFor}` : ''}`;
}

function describeCounts(counts: PipelineStatus['results'][number]['counts'] | undefined): string {
  const parts = Object.entries(counts ?? {}).filter(([, count]) => count > 0).map(([outcome, count]) => `${count} ${outcome}`);
  return parts.length > 0 ? parts.join(', ') : 'nothing yet';
}

export function snapshotLines(workflowId: string, snapshot: PipelineStatus): string[] {
  const lines = [`${workflowId}: ${snapshot.summary ? `${snapshot.stage} (${snapshot.summary})` : describeProgress(snapshot)}`];
  if (snapshot.outOfOrder) lines.push(`  out of order (${snapshot.outOfOrder.policy}): ${describeOutOfOrder(snapshot.outOfOrder.environments)}`);
  for (const environment of snapshot.results) {
    lines.push(`  ${environment.environment}${environment.done ? '' : ' (not finished)'}: ${describeCounts(environment.counts)}`);
    if (environment.fleet) lines.push(...fleetLines(environment.fleet));
    if (environment.databases) {
      for (const database of environment.databases) {
        lines.push(`    ${database.database}: ${describeCounts(database.counts)}`);
        lines.push(...outcomeLines(database, '      '));
      }
    } else lines.push(...outcomeLines(environment, '    '));
    if (environment.qa) {
      const qa = environment.qa;
      const lastLine = qa.outputTail.trim().split('\n').pop() ?? '';
      lines.push(`    QA \`${qa.command}\`: ${qa.passed ? 'passed' : 'failed'} in ${qa.durationMs} ms: ${lastLine}`);
    }
  }
  if (snapshot.decisions.length > 0) lines.push('  decisions');
  for (const decision of snapshot.decisions) {
    const role = decision.role ? ` as ${decision.role}` : '';
    const on = decision.environment ? ` for ${decision.environment}` : '';
    const comment = decision.comment ? ` "${decision.comment}"` : '';
    lines.push(`    ${decision.at} ${decision.user} ${decision.kind}${role}${on}: ${decision.accepted ? 'accepted' : 'REFUSED'} (${decision.reason ?? ''})${comment}`);
  }
  if (snapshot.lastError && snapshot.stage === 'blocked') lines.push(`  last error: ${snapshot.lastError}`);
  if ((snapshot.run ?? 1) > 1) lines.push(`  run ${snapshot.run} of the workflow (a long pipeline continues as new to stay within Temporal's history limits)`);
  return lines;
}

/** One database's recent outcomes, and where to read the others. */
function outcomeLines(result: TargetResult, indent: string): string[] {
  const lines: string[] = [];
  const handled = Object.values(result.counts ?? {}).reduce((sum, count) => sum + count, 0);
  if (handled > result.migrations.length && result.migrations.length > 0) lines.push(`${indent}… the last ${result.migrations.length} (every one: \`dbchange migrations status VERSION\`, or the ledger dbchange_migration_log):`);
  for (const migration of result.migrations) {
    const retries = migration.lockRetries ? `, ${migration.lockRetries} lock retries` : '';
    lines.push(`${indent}${migration.version}_${migration.name}: ${migration.outcome} in ${migration.durationMs} ms${retries}${migration.note ? ` (${migration.note})` : ''}`);
  }
  return lines;
}

/** Each wave's counts, then its blocked and given-up targets by name with their error. */
function fleetLines(fleet: FleetStatus): string[] {
  const lines = [`    ${fleet.targets} targets in ${fleet.waves.length} waves`];
  for (const wave of fleet.waves) {
    const counts = (['done', 'running', 'pending', 'blocked', 'failed'] as const).filter((key) => wave[key] > 0).map((key) => `${wave[key]} ${key}`);
    lines.push(`    wave ${wave.wave} (${wave.size} target${wave.size === 1 ? '' : 's'}): ${counts.join(', ') || 'nothing yet'}`);
    for (const issue of wave.blockedTargets) lines.push(`      blocked ${issue.target}: ${issue.error}`);
    for (const issue of wave.failedTargets) lines.push(`      failed ${issue.target} (given up): ${issue.error}`);
    const unnamed = wave.blocked + wave.failed - wave.blockedTargets.length - wave.failedTargets.length;
    if (unnamed > 0) lines.push(`      … and ${unnamed} more (pdm status --json lists the first ones)`);
  }
  return lines;
}
