// The demo's closing report: per environment, each migration's outcome and the QA result; then every decision.
import type { PipelineStatus } from '../../core/pipeline';

export function summaryLines(workflowId: string, result: PipelineStatus): string[] {
  const lines = [`${workflowId}: ${result.stage}${result.summary ? ` (${result.summary})` : ''}`];
  for (const environment of result.results) {
    lines.push(`  ${environment.environment}${environment.done ? '' : ' (not reached)'}`);
    for (const migration of environment.migrations) {
      const retries = migration.lockRetries ? `, ${migration.lockRetries} lock retries` : '';
      lines.push(`    ${migration.version}_${migration.name}: ${migration.outcome} in ${migration.durationMs} ms${retries}`);
    }
    if (environment.qa) {
      const qa = environment.qa;
      const lastLine = qa.outputTail.trim().split('\n').pop() ?? '';
      lines.push(`    QA \`${qa.command}\`: ${qa.passed ? 'passed' : 'failed'} in ${qa.durationMs} ms: ${lastLine}`);
    }
  }
  lines.push('  decisions');
  for (const decision of result.decisions) {
    const role = decision.role ? ` as ${decision.role}` : '';
    const on = decision.environment ? ` for ${decision.environment}` : '';
    const comment = decision.comment ? ` "${decision.comment}"` : '';
    lines.push(`    ${decision.at.slice(11, 19)} ${decision.user} ${decision.kind}${role}${on}: ${decision.accepted ? 'accepted' : 'refused'} (${decision.reason ?? ''})${comment}`);
  }
  return lines;
}
