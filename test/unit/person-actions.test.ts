import { describe, expect, it } from 'vitest';
import { approvalWaitText } from '../../core/change-status';
import { personAction, rolesAwaited, targetResolveCommand } from '../../core/person-actions';

describe('the command a person copies', () => {
  it('takes a blocked change\'s resolve command from what it waits for, and the reason before it', () => {
    const waitingFor = 'blocked on 20240801000002: ERROR 42P07: relation "invoices" already exists — run `dbchange resolve pdm-staging --as USER --action retry|mark-complete|abort`';
    expect(personAction({ workflowId: 'pdm-staging', stage: 'blocked', waitingFor })).toEqual({
      decision: 'resolve',
      reason: 'blocked on 20240801000002: ERROR 42P07: relation "invoices" already exists',
      commands: ['dbchange resolve pdm-staging --as USER --action retry|mark-complete|abort'],
    });
  });

  it('gives one approve command per role a pipeline gate or a change request waits for, with the checksum a change request needs', () => {
    expect(personAction({ workflowId: 'pdm-staging+production', stage: 'waiting-approval', waitingFor: 'waiting for approval by release-manager before production' })?.commands).toEqual([
      'dbchange approve pdm-staging+production --as USER --role release-manager',
    ]);
    const checksum = 'f'.repeat(64);
    const waitingFor = approvalWaitText([{ role: 'eoc' }, { role: 'manager', by: 'bob' }, { role: 'reviewer' }], 'msmiley', checksum);
    expect(personAction({ workflowId: 'cr-drop-fk', stage: 'waiting-approval', waitingFor, checksum })?.commands).toEqual([
      'dbchange approve cr-drop-fk --as USER --role eoc --checksum ffffffffffff',
      'dbchange approve cr-drop-fk --as USER --role reviewer --checksum ffffffffffff',
    ]);
    expect(rolesAwaited('waiting for approval by eoc or manager before check-orphans on production (checksum 5f1c0e9a2b7d)')).toEqual(['eoc', 'manager']);
    expect(rolesAwaited('waiting for approval by release-manager before cells wave 2')).toEqual(['release-manager']);
  });

  it('names one blocked fleet target in the resolve command, and offers nothing for a change that waits for no person', () => {
    expect(targetResolveCommand('dbchange resolve pdm-cells --as USER --target NAME|all-blocked --action retry|mark-complete|abort', 'cell-042')).toBe(
      'dbchange resolve pdm-cells --as USER --target cell-042 --action retry|mark-complete|abort',
    );
    expect(personAction({ workflowId: 'pdm-staging', stage: 'applying', waitingFor: 'waiting for pid 42' })).toBeUndefined();
  });
});
