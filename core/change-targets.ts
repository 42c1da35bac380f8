// Which database each step of a change request runs on. A step names its `database:` when an environment of the
// change has several; an environment with one database holds every schema, so every step runs there.
import { ChangeRequestError, type ChangeRequest, type ChangeStep } from './change-request';
import { selectEnvironments, type DatabaseTarget, type DbChangeConfig, type EnvironmentConfig } from './config';

/** The database `step` runs on in `environment`; undefined when the step does not say and the environment has several. */
export function stepDatabase(environment: EnvironmentConfig, step: Pick<ChangeStep, 'database'>): DatabaseTarget | undefined {
  if (environment.databases.length === 1) return environment.databases[0];
  return environment.databases.find((target) => target.database === step.database);
}

/** Every step that touches a database must find its database in every environment of the change, by line. */
export function changeTargetProblems(config: DbChangeConfig, changeRequest: ChangeRequest): string[] {
  const environments = selectEnvironments(config, changeRequest.environments);
  const problems: string[] = [];
  for (const [list, steps] of [['steps', changeRequest.steps], ['rollback', changeRequest.rollback]] as const) {
    for (const step of steps) {
      if (step.kind === 'approval') continue;
      for (const environment of environments) {
        if (stepDatabase(environment, step)) continue;
        const names = environment.databases.map((target) => target.database).join(', ');
        const why = step.database ? `environment ${environment.name} has no database "${step.database}"` : `environment ${environment.name} has several databases`;
        problems.push(`line ${step.line}: ${list}.${step.id}: ${why}; set database: to one of ${names}`);
        break;
      }
    }
  }
  return problems;
}

/** Throws a ChangeRequestError naming each step whose database is missing or unknown (and an unknown environment). */
export function checkChangeTargets(config: DbChangeConfig, file: string, changeRequest: ChangeRequest): void {
  const problems = changeTargetProblems(config, changeRequest);
  if (problems.length > 0) throw new ChangeRequestError(file, problems);
}
