// Every side effect the workflows need. Workflows pass environment names and target addresses (`staging`,
// `staging/ci`); connection strings stay here.
import { existsSync } from 'node:fs';
import { ApplicationFailure, CompleteAsyncError, Context } from '@temporalio/activity';
import { databasePairs, resolveTarget, selectEnvironments, type DatabaseTarget, type DbChangeConfig, type EnvironmentConfig } from '../core/config';
import { readMigrationDir, readMigrationVersion, type MigrationFile } from '../core/migration-dir';
import { MigrationFileError } from '../core/migration-files';
import { describeEdited } from '../core/pending';
import { describePromotionMismatches } from '../core/promotion';
import { outOfOrderFinding, type OutOfOrder, type OutOfOrderFinding, type OutOfOrderPolicy } from '../core/out-of-order';
import type { AppQuery, CompatibilityResult } from '../core/compatibility';
import type { PrecheckFinding } from '../core/prechecks';
import type { MigrationOutcome, QaResult } from '../core/pipeline';
import { capturePgStatStatements, explainQueries, readQueryFile } from './compatibility';
import { driftBetween } from './drift';
import { describeRegularDrift } from '../core/drift';
import { runPrechecks, type SqlToCheck } from './prechecks';
import { createBatchActivities, type MigrationRef } from './batches';
import { createBackfillActivities } from './backfills';
import { createFleetActivities, planDigest } from './fleet-rollout';
import { digestOfFiles, verifyDecision } from './ssh-signatures';
import { shortDigest } from '../core/decision-statement';
import type { FleetConfig, FleetPlan } from '../core/fleet';
import { whileHeartbeating } from './heartbeat';
import { DatabasePools, recordWithoutRunning } from './db';
import { postNotification, type Notification } from './notify';
import { runProductionChecks, type ProductionCheckResult } from './production-checks';
import { HoldWatcher, type HoldRequest } from './production-holds';
import { runQaCommand } from './qa-gate';
import { reportProgress, settleFailure } from './step-progress';
import { reviewPendingOn } from './pending-review';
import { ChangeRequestError, type ChangeRequest, type ChangeStep, type CheckStep, type SqlStep } from '../core/change-request';
import { checkChangeRequestText } from '../core/change-request-file';
import { requiredApprovals, stepSettings, type LockSettings } from '../core/change-steps';
import { checkChangeTargets, stepDatabase } from '../core/change-targets';
import { environmentOf, runsOn } from '../core/targets';
import { ConfigError } from '../core/config';
import { rehearseSteps, runCheckStep, runSqlStep, type CheckResult, type RehearsalReport, type SqlStepResult, type StepRun } from './change-steps';

export const APPLIED_MIGRATION_EDITED = 'AppliedMigrationEdited';
export const PROMOTED_MIGRATION_CHANGED = 'PromotedMigrationChanged';
export const INVALID_MIGRATION_FILE = 'InvalidMigrationFile';
export const MIGRATION_NOT_FOUND = 'MigrationNotFound';
export const APPROVED_FILES_CHANGED = 'ApprovedFilesChanged';

/** The part of the config a pipeline needs in its history: names, gates and timings, no secrets. */
export interface PipelinePlan {
  /** `targets`: the addresses of each environment's databases, in order (absent in plans made before there were several). */
  environments: { name: string; qa: boolean; approval?: { roles: string[]; timeoutMs: number }; targets?: string[]; fleet?: FleetPlan }[];
  approvers: Record<string, string[]>;
  recheckIntervalMs: number;
  /** Whether the project lists its application's queries, so the compatibility gate has something to check. */
  compatibilityGate: boolean;
  /** What regular-migration drift between consecutive environments does: refuse (block) or warn. */
  drift: 'refuse' | 'warn';
  /** migrations.outOfOrder; absent in plans made before it existed. */
  outOfOrder?: OutOfOrderPolicy;
  /** approvals.signatures; absent in plans made before dbchange checked signatures. */
  signatures?: 'optional' | 'required';
}

/** What a change request needs in its history: the checked CR, who must approve, and timings. No secrets. */
export interface ChangePlan {
  changeRequest: ChangeRequest;
  checksum: string;
  /** Roles that must each approve, by different people, before the change starts. */
  approvals: string[];
  approvers: Record<string, string[]>;
  approvalTimeoutMs: number;
  rollbackWindowMs: number;
  recheckIntervalMs: number;
  /** The project's lock settings with the CR's own lockRetry on top; steps may override the timeouts. */
  settings: LockSettings;
  /** approvals.signatures; absent in plans made before dbchange checked signatures. */
  signatures?: 'optional' | 'required';
}

export const INVALID_CHANGE_REQUEST = 'InvalidChangeRequest';

export interface PendingMigration {
  version: string;
  name: string;
  fileName: string;
  checksum: string;
  transactional: boolean;
  /** Set when a newer post-deploy version is already applied on this environment. */
  outOfOrder?: OutOfOrder;
  /** `-- dbchange:requires-backfill`: backfills that must have finished on this environment before it runs. */
  requiresBackfill?: string[];
}

export type { MigrationRef } from './batches';

export function createActivities(config: DbChangeConfig, pools = new DatabasePools(), holds = new HoldWatcher(config.changeLocks)) {
  const environmentNamed = (name: string): EnvironmentConfig => selectEnvironments(config, [name])[0];
  const targetNamed = (address: string): DatabaseTarget => asNonRetryable(() => resolveTarget(config, address));

  /** The database a change request's step runs on in `environment` (planChangeRequest checked that there is one). */
  const stepTarget = (environment: string, step: Pick<ChangeStep, 'database'>): DatabaseTarget => {
    const target = stepDatabase(environmentNamed(environment), step);
    if (!target) throw ApplicationFailure.create({ type: 'ConfigError', nonRetryable: true, message: `environment ${environment} has no database for this step${step.database ? ` ("${step.database}")` : ''}; set database: in the change request` });
    return target;
  };

  /** Reads migration files, turning a bad file into a non-retryable failure that names it. */
  const readMigrations = <T>(read: (dir: string) => T): T => {
    try {
      return read(config.migrations.postDeploy);
    } catch (error) {
      if (error instanceof MigrationFileError) {
        throw ApplicationFailure.create({ type: INVALID_MIGRATION_FILE, nonRetryable: true, message: error.message });
      }
      throw error;
    }
  };

  /** The file of a listed migration, as listed: a file gone or edited since is a non-retryable failure. */
  const checkedMigration = (ref: MigrationRef, file: MigrationFile | undefined): MigrationFile => {
    if (!file) {
      throw ApplicationFailure.create({
        type: MIGRATION_NOT_FOUND,
        nonRetryable: true,
        message: `migration ${ref.version} is no longer in ${config.migrations.postDeploy}; deploy the worker with the same migrations as the pipeline`,
      });
    }
    if (file.checksum !== ref.checksum) {
      throw ApplicationFailure.create({
        type: APPLIED_MIGRATION_EDITED,
        nonRetryable: true,
        message: `${file.fileName} changed after the pipeline listed it; what runs must be what was listed: start a new pipeline`,
      });
    }
    return file;
  };
  const migrationFor = (ref: MigrationRef): MigrationFile => checkedMigration(ref, readMigrations((dir) => readMigrationVersion(dir, ref.version)));
  /** Every listed migration with one read of the folder: a plan can list thousands, and each lookup alone lists the folder. */
  const migrationsFor = (refs: MigrationRef[]): MigrationFile[] => {
    const byVersion = new Map(readMigrations(readMigrationDir).map((file) => [file.version, file]));
    return refs.map((ref) => checkedMigration(ref, byVersion.get(ref.version)));
  };

  /** What runs next on a database; an edited file or a promotion mismatch is a non-retryable failure that says which. */
  const pendingOn = async (environment: string): Promise<PendingMigration[]> => {
    const target = targetNamed(environment);
    const files = readMigrations(readMigrationDir);
    checkDatabaseNames(config, files);
    const report = await reviewPendingOn(config, pools, files, target);
    if (report.edited.length > 0) {
      throw ApplicationFailure.create({
        type: APPLIED_MIGRATION_EDITED,
        nonRetryable: true,
        message: describeEdited(environment, report.edited),
        details: report.edited,
      });
    }
    // What ran before is what runs next: checked here, where the listed checksums become what is applied.
    if (report.mismatches.length > 0) {
      throw ApplicationFailure.create({ type: PROMOTED_MIGRATION_CHANGED, nonRetryable: true, message: describePromotionMismatches(report.mismatches), details: report.mismatches });
    }
    // A migration that this database only records as skipped (its `-- dbchange:databases` names others) waits for no backfill here.
    const database = target.address === target.environment ? undefined : target.database;
    return report.pending.map(({ version, name, fileName, checksum, transactional, outOfOrder, requiresBackfill, databases }) => ({
      version,
      name,
      fileName,
      checksum,
      transactional,
      ...(outOfOrder && { outOfOrder }),
      ...(requiresBackfill && runsOn(databases, database) && { requiresBackfill }),
    }));
  };

  return {
    ...createBatchActivities(config, pools, targetNamed, migrationFor, migrationsFor),
    ...createBackfillActivities(config, pools),
    ...createFleetActivities({ config, pools, environmentNamed, readFiles: () => readMigrations(readMigrationDir) }),

    async planPipeline(requested: string[] | undefined): Promise<PipelinePlan> {
      return {
        environments: selectEnvironments(config, requested).map((environment) => ({
          name: environment.name,
          qa: Boolean(environment.qa),
          approval: environment.approval,
          targets: environment.databases.map((target) => target.address),
          ...(environment.fleet ? { fleet: fleetPlanOf(environment.fleet) } : {}),
        })),
        approvers: config.approvers,
        recheckIntervalMs: config.recheckIntervalMs,
        compatibilityGate: Boolean(config.gates.compatibility.queries) || config.gates.compatibility.pgStatStatements,
        drift: config.gates.drift,
        outOfOrder: config.migrations.outOfOrder,
        signatures: config.signatures,
      };
    },

    /** The same prechecks for any SQL, e.g. a change request's steps, each on its database: findings with severity block or warn. */
    async precheckSql(input: { environment: string; sources: SqlToCheck[] }): Promise<PrecheckFinding[]> {
      const byTarget = new Map<DatabaseTarget, SqlToCheck[]>();
      for (const source of input.sources) {
        const target = stepTarget(input.environment, source);
        byTarget.set(target, [...(byTarget.get(target) ?? []), source]);
      }
      const findings: PrecheckFinding[] = [];
      for (const [target, sources] of byTarget) findings.push(...(await runPrechecks(pools.pool(target), sources, config.gates.precheckTimeoutMs)));
      return findings;
    },

    /**
     * Regular migrations run on `previous` but not on `environment`, or the other way round: drift the pipeline must
     * not promote past. Each database is compared with its counterpart; with several, each difference names its database.
     */
    async compareRegularMigrations(input: { previous: string; environment: string }): Promise<string[]> {
      return whileHeartbeating(async () => {
        try {
          const pairs = databasePairs(environmentNamed(input.previous), environmentNamed(input.environment));
          const differences: string[] = [];
          for (const [previous, target] of pairs) {
            const found = describeRegularDrift(await driftBetween(config, pools, previous.address, target.address));
            differences.push(...(pairs.length > 1 ? found.map((difference) => `${target.database}: ${difference}`) : found));
          }
          return differences;
        } catch (error) {
          if (error instanceof MigrationFileError) throw ApplicationFailure.create({ type: INVALID_MIGRATION_FILE, nonRetryable: true, message: error.message });
          throw error;
        }
      });
    },

    /** EXPLAINs the running application's queries against an environment; failures name the query and the error. */
    async checkCompatibility(environment: string): Promise<CompatibilityResult> {
      return whileHeartbeating(async () => {
        const pool = pools.pool(targetNamed(environment));
        const { queries: file, pgStatStatements } = config.gates.compatibility;
        if (file && !existsSync(file)) {
          throw ApplicationFailure.create({ type: 'ConfigError', nonRetryable: true, message: `gates.compatibility.queries: ${file} not found; point it at the file of the application's queries` });
        }
        const queries: AppQuery[] = [...(file ? await readQueryFile(file) : []), ...(pgStatStatements ? await capturePgStatStatements(pool) : [])];
        return explainQueries(pool, environment, queries, config.gates.precheckTimeoutMs);
      });
    },

    /**
     * What runs next on a database. After a signed approval, `approvedDigest` is what the approval named for this
     * database: pending files that differ from it (added, removed or edited since) block instead of running.
     */
    async listPendingMigrations(environment: string, approvedDigest?: string): Promise<PendingMigration[]> {
      const pending = await pendingOn(environment);
      const now = digestOfFiles(pending);
      if (approvedDigest !== undefined && now !== approvedDigest) {
        throw ApplicationFailure.create({
          type: APPROVED_FILES_CHANGED,
          nonRetryable: true,
          message: `the pending files of ${environment} changed since they were approved (approved ${shortDigest(approvedDigest)}, now ${shortDigest(now)}): what runs must be what was approved; restore them and retry, or abort and start a new pipeline`,
        });
      }
      return pending;
    },

    /**
     * What an approval before `environment` permits, as the digest a signature names: each database's pending files
     * (address, version, checksum), with each database's own digest to check before it runs; for a fleet, every
     * post-deploy file, which each target runs what it lacks of.
     */
    async approvalDigest(environment: string): Promise<{ digest: string; targets: Record<string, string> }> {
      const configured = environmentNamed(environment);
      if (configured.fleet) {
        const digest = `sha256:${planDigest(readMigrations(readMigrationDir))}`;
        return { digest, targets: { [environment]: digest } };
      }
      const entries: { target: string; version: string; checksum: string }[] = [];
      const targets: Record<string, string> = {};
      for (const target of configured.databases) {
        const pending = await pendingOn(target.address);
        targets[target.address] = digestOfFiles(pending);
        entries.push(...pending.map((file) => ({ target: target.address, version: file.version, checksum: file.checksum })));
      }
      return { digest: digestOfFiles(entries), targets };
    },

    /** Checks a signed decision against the keys dbchange.yaml lists for its user (or a gateway acting for them). */
    async verifyDecisionSignature(input: { user: string; statement: string; signature: string }) {
      return verifyDecision(config, { user: input.user, text: input.statement, signature: input.signature });
    },

    /** The first look: how many are pending and which are out of order, without the whole list (thousands of files). */
    async lookAtPending(environment: string): Promise<{ count: number; outOfOrder?: OutOfOrderFinding }> {
      const pending = await pendingOn(environment);
      const outOfOrder = outOfOrderFinding(environment, pending);
      return { count: pending.length, ...(outOfOrder ? { outOfOrder } : {}) };
    },

    /** Records a migration as applied without running it (seed 004's mitigation for a failed DML migration). */
    async markMigrationComplete(ref: MigrationRef & { decidedBy: string }): Promise<MigrationOutcome> {
      const migration = migrationFor(ref);
      const started = Date.now();
      const workflowId = Context.current().info.workflowExecution?.workflowId ?? '';
      await recordWithoutRunning(pools.pool(targetNamed(ref.environment)), migration, { outcome: 'marked-complete', workflowId, decidedBy: ref.decidedBy });
      return { version: migration.version, name: migration.name, outcome: 'marked-complete', durationMs: Date.now() - started, attempts: 1 };
    },

    async checkProductionGates(environment: string): Promise<ProductionCheckResult> {
      const self = Context.current().info.workflowExecution?.workflowId ?? '';
      return runProductionChecks(Context.current().client, environment, config.changeLocks, self);
    },

    /** Completes once the production checks pass; the watcher waits, so the hold adds no history and no busy slot. */
    async awaitProductionChecks(request: HoldRequest): Promise<ProductionCheckResult> {
      const { client, info } = Context.current();
      holds.watch({ ...request, client, taskToken: info.taskToken, workflow: info.workflowExecution! });
      throw new CompleteAsyncError();
    },

    async runQaGate(environment: string): Promise<QaResult> {
      const qa = environmentNamed(environmentOf(environment)).qa;
      if (!qa) throw ApplicationFailure.create({ nonRetryable: true, message: `environment ${environment} has no qa command` });
      return runQaCommand(qa.command, qa.timeoutMs, environment, config.path);
    },

    /** Checks the CR text again on the worker: the checksum must match, and every environment must exist here. */
    async planChangeRequest(input: { file: string; content: string; checksum: string }): Promise<ChangePlan> {
      try {
        const checked = await checkChangeRequestText(input.content, input.file);
        if (checked.checksum !== input.checksum) {
          throw new ChangeRequestError(input.file, [`checksum ${input.checksum} does not match the content (sha256 ${checked.checksum}); start the change from the file with \`dbchange cr execute\``]);
        }
        checkChangeTargets(config, input.file, checked.changeRequest);
        return {
          changeRequest: checked.changeRequest,
          checksum: checked.checksum,
          approvals: requiredApprovals(checked.changeRequest.criticality, config.changeRequests.approvals),
          approvers: config.approvers,
          approvalTimeoutMs: config.changeRequests.approvalTimeoutMs,
          rollbackWindowMs: config.changeRequests.rollbackWindowMs,
          recheckIntervalMs: config.recheckIntervalMs,
          settings: stepSettings(config.lockRetry, checked.changeRequest.lockRetry),
          signatures: config.signatures,
        };
      } catch (error) {
        if (error instanceof ChangeRequestError || error instanceof ConfigError) {
          throw ApplicationFailure.create({ type: INVALID_CHANGE_REQUEST, nonRetryable: true, message: error.message });
        }
        throw error;
      }
    },

    async runChangeSql(input: { run: StepRun; step: SqlStep; settings: LockSettings }): Promise<SqlStepResult> {
      const control = {
        stop: Context.current().cancellationSignal,
        statementTimeoutRetries: config.lockRetry.statementTimeoutRetries,
        onWaiting: (waitingFor: string | undefined) => reportProgress({ step: input.step.id, waitingFor }),
      };
      try {
        return await whileHeartbeating(() => runSqlStep(pools.pool(stepTarget(input.run.environment, input.step)), input.run, input.step, input.settings, control));
      } catch (error) {
        throw await settleFailure(input.step.id, error, config.lockRetry.maxAttempts);
      }
    },

    async runChangeCheck(input: { environment: string; step: CheckStep; settings: LockSettings }): Promise<CheckResult> {
      return runCheckStep(pools.pool(stepTarget(input.environment, input.step)), input.step, input.settings);
    },

    /** The dry run of one environment: the steps, then the rollback, in one transaction that is rolled back. */
    async rehearseChange(input: { environment: string; steps: ChangeStep[]; rollback: ChangeStep[]; settings: LockSettings }): Promise<RehearsalReport> {
      const settingsOf = (step: ChangeStep) => (step.kind === 'sql' ? stepSettings(input.settings, {}, step) : input.settings);
      const phases = [{ phase: 'execute' as const, steps: input.steps }, { phase: 'rollback' as const, steps: input.rollback }];
      const databaseOf = (step: ChangeStep) => {
        const target = stepTarget(input.environment, step);
        return { pool: pools.pool(target), label: target.address === target.environment ? undefined : target.database };
      };
      return whileHeartbeating(() => rehearseSteps(databaseOf, input.environment, phases, settingsOf));
    },

    async notify(notification: Notification): Promise<void> {
      await postNotification(config.webhookUrl, notification);
    },
  };
}

export type DbChangeActivities = ReturnType<typeof createActivities>;

/** What a rollout needs of a fleet's config in its history: waves and limits, not the source (it may hold a URL). */
function fleetPlanOf(fleet: FleetConfig): FleetPlan {
  const { waves, concurrency, haltAfterFailures, approvalBetweenWaves } = fleet;
  return { waves, concurrency, haltAfterFailures, ...(approvalBetweenWaves ? { approvalBetweenWaves } : {}) };
}

/** A target that dbchange.yaml does not have cannot appear by retrying: fail once, with the message that says why. */
function asNonRetryable<T>(resolve: () => T): T {
  try {
    return resolve();
  } catch (error) {
    if (error instanceof ConfigError) throw ApplicationFailure.create({ type: 'ConfigError', nonRetryable: true, message: error.problems.join('; ') });
    throw error;
  }
}

/** A `-- dbchange:databases` header naming a database that a decomposed environment lacks is a typo: it would run nowhere. */
function checkDatabaseNames(config: DbChangeConfig, files: MigrationFile[]): void {
  for (const environment of config.environments.filter((item) => item.databases.length > 1)) {
    const known = environment.databases.map((target) => target.database);
    for (const file of files) {
      const unknown = (file.databases ?? []).filter((name) => !known.includes(name));
      if (unknown.length === 0) continue;
      throw ApplicationFailure.create({
        type: INVALID_MIGRATION_FILE,
        nonRetryable: true,
        message: `${file.fileName}: -- dbchange:databases names ${unknown.join(', ')}, which environment ${environment.name} does not have (its databases: ${known.join(', ')}); fix the header`,
      });
    }
  }
}
