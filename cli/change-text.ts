// A change request as an SRE reads it: the plan before it runs, and where it stands while it runs.
import type { ChangeRequest, ChangeStep } from '../core/change-request';
import type { ChangeRequestStatus } from '../core/change-status';
import { formatDuration } from '../core/duration';

export function describeChangeProgress(snapshot: ChangeRequestStatus): string {
  if (snapshot.summary && snapshot.stage !== 'blocked') return `[${snapshot.stage}] ${snapshot.summary}`;
  const where = [snapshot.environment, snapshot.step && `${snapshot.phase} step ${snapshot.step.index} of ${snapshot.step.total} (${snapshot.step.kind} ${snapshot.step.id})`].filter(Boolean).join(', ');
  return `[${snapshot.stage}]${where ? ` ${where}` : ''}${snapshot.waitingFor ? `: ${snapshot.waitingFor}` : ''}`;
}

export function changeStatusLines(workflowId: string, snapshot: ChangeRequestStatus): string[] {
  const lines = [
    `${workflowId}: ${describeChangeProgress(snapshot)}`,
    `  ${snapshot.criticality} · ${snapshot.title} · requested by ${snapshot.requestedBy} · checksum ${snapshot.checksum.slice(0, 12)}`,
  ];
  if (snapshot.approvals.length > 0) lines.push(`  approvals: ${snapshot.approvals.map((approval) => `${approval.role} ${approval.by ? `by ${approval.by}` : '(pending)'}`).join(', ')}`);
  let heading = '';
  for (const step of snapshot.steps) {
    const section = `${step.environment} (${step.phase})`;
    if (section !== heading) lines.push(`  ${(heading = section)}`);
    const attempts = [step.attempts && step.attempts > 1 && `${step.attempts} attempts`, step.lockRetries && `${step.lockRetries} lock retries`].filter(Boolean).map((fact) => `, ${fact}`).join('');
    const locks = step.locks?.length ? `; locks: ${step.locks.join(', ')}` : '';
    lines.push(`    ${step.kind} ${step.id}: ${step.outcome}${step.durationMs ? ` in ${formatDuration(step.durationMs)}` : ''}${attempts}${step.note ? ` (${step.note})` : ''}${locks}`);
  }
  if (snapshot.decisions.length > 0) lines.push('  decisions');
  for (const decision of snapshot.decisions) {
    const role = decision.role ? ` as ${decision.role}` : '';
    lines.push(`    ${decision.at} ${decision.user} ${decision.kind}${role}: ${decision.accepted ? 'accepted' : 'REFUSED'} (${decision.reason ?? ''})${decision.comment ? ` "${decision.comment}"` : ''}`);
  }
  if (snapshot.lastError && snapshot.stage === 'blocked') lines.push(`  last error: ${snapshot.lastError}`);
  if (snapshot.rollbackUntil) lines.push(`  rollback accepted until ${snapshot.rollbackUntil}: dbchange cr rollback ${snapshot.changeId} --as USER --reason "..."`);
  return lines;
}

/** The plan, as `cr validate` prints it. */
export function planLines(file: string, cr: ChangeRequest, checksum: string, approvals: string[] | undefined): string[] {
  const lines = [
    `${file}: valid change request ${cr.id} (${cr.criticality})`,
    `  title: ${cr.title}`,
    `  requested by: ${cr.requestedBy}`,
    `  environments: ${cr.environments.join(' → ')}`,
    `  checksum: ${checksum}`,
    `  approvals: ${approvals === undefined ? '(no dbchange.yaml here to say)' : approvals.length === 0 ? 'none' : `${approvals.join(' and ')}${approvals.length > 1 ? ', by different people' : ''}, not ${cr.requestedBy}`}`,
    '  steps:',
    ...cr.steps.map((step, index) => `    ${index + 1}. ${stepLine(step)}`),
    `  rollback:${cr.rollback.length === 0 ? ' none (a rollback after completion is not possible)' : ''}`,
    ...cr.rollback.map((step, index) => `    ${index + 1}. ${stepLine(step)}`),
  ];
  for (const role of approvals ?? []) lines.push(`  approve: dbchange approve cr-${cr.id} --as USER --role ${role} --checksum ${checksum.slice(0, 12)}`);
  return lines;
}

function stepLine(step: ChangeStep): string {
  const when = step.when ? ` [only if ${step.when.check} ${step.when.outcome}]` : '';
  if (step.kind === 'approval') return `approval ${step.id}: by ${step.roles.join(' or ')}${when}`;
  if (step.kind === 'check') {
    const expected = 'value' in step.expect ? `value ${step.expect.value}` : `${step.expect.rows.op === '=' ? '' : step.expect.rows.op}${step.expect.rows.count} rows`;
    return `check ${step.id}: expects ${expected}${step.onFail === 'continue' ? ', continues if not' : ''}${when}`;
  }
  const facts = [
    step.lockTables.length > 0 && `locks ${step.lockTables.join(', ')}`,
    step.statementTimeoutMs !== undefined && `statement timeout ${formatDuration(step.statementTimeoutMs)}`,
    step.lockTimeoutMs !== undefined && `lock timeout ${formatDuration(step.lockTimeoutMs)}`,
    !step.transaction && 'no transaction',
  ].filter(Boolean);
  return `sql ${step.id}${facts.length ? ` (${facts.join('; ')})` : ''}${when}`;
}
