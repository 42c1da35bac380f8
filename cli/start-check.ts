// What `pdm execute` checks before it starts a pipeline: each block the pipeline would meet that the ledgers show now.
import type { DbChangeConfig } from '../core/config';
import { readMigrationDir } from '../core/migration-dir';
import { assessPipelineStart, describeUnchecked } from '../core/promotion';
import { readLedgersUpFront } from '../activities/pending-review';
import { CliError, EXIT, progress } from './output';

/**
 * Refuses (exit 3) with the pipeline's own message when a walked environment has an edited file, a file that would
 * run with other bytes than an earlier environment ran, or (under refuse) an out-of-order version. Ledgers this
 * process cannot read are named in one stderr line; the pipeline checks them before each environment.
 */
export async function checkPipelineStart(config: DbChangeConfig, walked: string[]): Promise<void> {
  const files = readMigrationDir(config.migrations.postDeploy);
  // Environments after the last walked one cannot change what the pipeline does.
  const last = Math.max(...walked.map((name) => config.environments.findIndex((environment) => environment.name === name)));
  const ledgers = await readLedgersUpFront(config.environments.slice(0, last + 1).flatMap((environment) => environment.databases));
  const walkedTargets = config.environments.filter((environment) => walked.includes(environment.name)).flatMap((environment) => environment.databases.map((target) => target.address));
  const assessment = assessPipelineStart(files, ledgers, walkedTargets, config.migrations.outOfOrder);
  for (const warning of assessment.warnings) progress(warning);
  if (assessment.unchecked.length > 0) progress(describeUnchecked(assessment.unchecked));
  if (assessment.refusals.length > 0) throw new CliError(`${assessment.refusals.join('; ')}; then run \`dbchange pdm execute\` again`, EXIT.refused);
}
