// Every side effect the workflows need. Workflows pass environment names; connection strings stay here.
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import { selectEnvironments, type DbChangeConfig, type EnvironmentConfig } from '../core/config';
import { readMigrationDir, readMigrationVersion, type MigrationFile } from '../core/migration-dir';
import { MigrationFileError } from '../core/migration-files';
import { comparePending, describeEdited } from '../core/pending';
import type { MigrationOutcome, QaResult } from '../core/pipeline';
import { applyMigrationOnce } from './apply-migration';
import { countLockTimeoutRetry, recordMigrationApplied } from './metrics';
import { DatabasePools, inApplierTransaction, LEDGER_TABLE, readAppliedState, SCHEMA_MIGRATIONS_TABLE, withConnection } from './db';
import { postNotification, type Notification } from './notify';
import { runProductionChecks, type ProductionCheckResult } from './production-checks';
import { runQaCommand } from './qa-gate';
import { applierProgress } from '../workflows/messages';

export const APPLIED_MIGRATION_EDITED = 'AppliedMigrationEdited';
export const INVALID_MIGRATION_FILE = 'InvalidMigrationFile';
export const MIGRATION_NOT_FOUND = 'MigrationNotFound';
const HEARTBEAT_EVERY_MS = 1_000;

/** The part of the config a pipeline needs in its history: names, gates and timings, no secrets. */
export interface PipelinePlan {
  environments: { name: string; qa: boolean; approval?: { roles: string[]; timeoutMs: number } }[];
  approvers: Record<string, string[]>;
  recheckIntervalMs: number;
}

export interface PendingMigration {
  version: string;
  name: string;
  fileName: string;
  checksum: string;
  transactional: boolean;
}

export interface MigrationRef {
  environment: string;
  version: string;
  checksum: string;
}

export function createActivities(config: DbChangeConfig, pools = new DatabasePools()) {
  const environmentNamed = (name: string): EnvironmentConfig => selectEnvironments(config, [name])[0];

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

  const migrationFor = (ref: MigrationRef): MigrationFile => {
    const file = readMigrations((dir) => readMigrationVersion(dir, ref.version));
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

  return {
    async planPipeline(requested: string[] | undefined): Promise<PipelinePlan> {
      return {
        environments: selectEnvironments(config, requested).map((environment) => ({
          name: environment.name,
          qa: Boolean(environment.qa),
          approval: environment.approval,
        })),
        approvers: config.approvers,
        recheckIntervalMs: config.recheckIntervalMs,
      };
    },

    async listPendingMigrations(environment: string): Promise<PendingMigration[]> {
      const files = readMigrations(readMigrationDir);
      const report = comparePending(files, await readAppliedState(pools.pool(environmentNamed(environment))));
      if (report.edited.length > 0) {
        throw ApplicationFailure.create({
          type: APPLIED_MIGRATION_EDITED,
          nonRetryable: true,
          message: describeEdited(environment, report.edited),
          details: report.edited,
        });
      }
      return report.pending.map(({ version, name, fileName, checksum, transactional }) => ({ version, name, fileName, checksum, transactional }));
    },

    async applyMigration(ref: MigrationRef): Promise<MigrationOutcome> {
      const context = Context.current();
      const heartbeat = setInterval(() => context.heartbeat({ version: ref.version }), HEARTBEAT_EVERY_MS);
      const workflow = context.info.workflowExecution;
      try {
        const outcome = await applyMigrationOnce({
          pool: pools.pool(environmentNamed(ref.environment)),
          migration: migrationFor(ref),
          settings: config.lockRetry,
          workflowId: workflow?.workflowId ?? '',
          onWaiting: async (waitingFor) => {
            if (!workflow) return;
            await context.client.workflow
              .getHandle(workflow.workflowId, workflow.runId)
              .signal(applierProgress, { version: ref.version, waitingFor });
          },
          onLockRetry: () => countLockTimeoutRetry(ref.environment),
        });
        if (outcome.outcome === 'applied') recordMigrationApplied(ref.environment, outcome.durationMs);
        log.info(`${outcome.outcome} ${ref.version} on ${ref.environment}`, { environment: ref.environment, version: ref.version, durationMs: outcome.durationMs, lockRetries: outcome.lockRetries });
        return outcome;
      } finally {
        clearInterval(heartbeat);
      }
    },

    /** Records a migration as applied without running it (seed 004's mitigation for a failed DML migration). */
    async markMigrationComplete(ref: MigrationRef & { decidedBy: string }): Promise<MigrationOutcome> {
      const migration = migrationFor(ref);
      const started = Date.now();
      await withConnection(pools.pool(environmentNamed(ref.environment)), (client) =>
        inApplierTransaction(client, async () => {
          const inserted = await client.query(`INSERT INTO ${SCHEMA_MIGRATIONS_TABLE} (version) VALUES ($1) ON CONFLICT DO NOTHING`, [migration.version]);
          if ((inserted.rowCount ?? 0) === 0) return; // already recorded by an earlier attempt
          await client.query(
            `INSERT INTO ${LEDGER_TABLE} (version, name, checksum, outcome, started_at, duration_ms, workflow_id, decided_by)
             VALUES ($1, $2, $3, 'marked-complete', now(), 0, $4, $5)`,
            [migration.version, migration.name, migration.checksum, Context.current().info.workflowExecution?.workflowId ?? '', ref.decidedBy],
          );
        }),
      );
      return { version: migration.version, name: migration.name, outcome: 'marked-complete', durationMs: Date.now() - started, attempts: 1 };
    },

    async checkProductionGates(environment: string): Promise<ProductionCheckResult> {
      const self = Context.current().info.workflowExecution?.workflowId ?? '';
      return runProductionChecks(Context.current().client, environment, config.changeLocks, self);
    },

    async runQaGate(environment: string): Promise<QaResult> {
      const qa = environmentNamed(environment).qa;
      if (!qa) throw ApplicationFailure.create({ nonRetryable: true, message: `environment ${environment} has no qa command` });
      return runQaCommand(qa.command, qa.timeoutMs, environment, config.path);
    },

    async notify(notification: Notification): Promise<void> {
      await postNotification(config.webhookUrl, notification);
    },
  };
}

export type DbChangeActivities = ReturnType<typeof createActivities>;
