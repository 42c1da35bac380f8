// What a change waiting for a person needs from them: the exact `dbchange approve` or `resolve` command to copy.
// The commands come from what the workflow itself says it waits for, so the dashboard and the CLI never disagree.

export interface WaitingChange {
  workflowId: string;
  stage: string;
  waitingFor?: string;
  /** A change request's checksum: an approval must name it (its first 12 characters suffice). */
  checksum?: string;
}

export interface PersonAction {
  decision: 'approve' | 'resolve';
  /** What it waits for, in the workflow's words, without the command. */
  reason: string;
  /** Complete commands but for who runs them (USER); an approval lists one per role it waits for. */
  commands: string[];
}

const RESOLVE_COMMAND = /`(dbchange resolve [^`]+)`/;
const APPROVAL_ROLES = /^waiting for approval by (.+?)(?: before | \(|$)/;
/** How a fleet's resolve command names the target: replaced by one blocked target's name. */
const ANY_TARGET = '--target NAME|all-blocked';
const CHECKSUM_SHOWN = 12;

/** The decision a waiting change needs and how to give it; undefined when it waits for no person. */
export function personAction(change: WaitingChange): PersonAction | undefined {
  const waitingFor = change.waitingFor ?? '';
  if (change.stage === 'blocked') {
    const command = RESOLVE_COMMAND.exec(waitingFor)?.[1] ?? `dbchange resolve ${change.workflowId} --as USER --action retry|abort`;
    return { decision: 'resolve', reason: waitingFor.split(' — run `')[0], commands: [command] };
  }
  if (change.stage === 'waiting-approval') {
    const checksum = change.checksum ? ` --checksum ${change.checksum.slice(0, CHECKSUM_SHOWN)}` : '';
    return { decision: 'approve', reason: waitingFor, commands: rolesAwaited(waitingFor).map((role) => `dbchange approve ${change.workflowId} --as USER --role ${role}${checksum}`) };
  }
  return undefined;
}

/** `waiting for approval by eoc and manager (…)` → [eoc, manager]; `by release-manager or eoc before production` → both. */
export function rolesAwaited(waitingFor: string): string[] {
  const roles = APPROVAL_ROLES.exec(waitingFor)?.[1];
  return roles ? roles.split(/ (?:or|and) /).map((role) => role.trim()).filter(Boolean) : ['ROLE'];
}

/** A fleet's resolve command narrowed to one blocked target. */
export function targetResolveCommand(command: string, target: string): string {
  return command.includes(ANY_TARGET) ? command.replace(ANY_TARGET, `--target ${target}`) : command;
}
