// The pipeline's migration activities: lint a plan at once, and apply it in batches (apply-batch.ts).
import { whileHeartbeating } from './heartbeat';
import { tablesFilledBy } from '../core/backfill';
import { readBackfillDir } from '../core/backfill-file';
import type { BackfillTable } from './prechecks';
import { readFileSync } from 'node:fs';
import { Context, log } from '@temporalio/activity';
import type { DatabaseTarget, DbChangeConfig } from '../core/config';
import type { LintFinding } from '../core/lint-rules';
import type { MigrationFile } from '../core/migration-dir';
import { keepRecent, RECENT_FINDINGS } from '../core/pipeline-record';
import { applyBatch, type BatchResult } from './apply-batch';
import type { DatabasePools } from './db';
import { lintMigrationTexts } from './lint';
import { countLockTimeoutRetry, recordMigrationApplied } from './metrics';
import { reportProgress, settleFailure } from './step-progress';

export interface MigrationRef {
  environment: string;
  version: string;
  checksum: string;
}

/** A plan's lint findings as the status keeps them: how many, by rule, and the last ones in full. */
export interface LintSummary {
  count: number;
  byRule: Record<string, number>;
  recent: LintFinding[];
}

const HEARTBEAT_EVERY_MS = 1_000;

export function createBatchActivities(
  config: DbChangeConfig,
  pools: DatabasePools,
  targetNamed: (address: string) => DatabaseTarget,
  migrationFor: (ref: MigrationRef) => MigrationFile,
  migrationsFor: (refs: MigrationRef[]) => MigrationFile[],
) {
  return {
    /** Lints every pending file of a plan with one squawk run; advisory: a linter that cannot run is reported. */
    async lintPlan(input: { environment: string; migrations: { version: string; checksum: string }[] }): Promise<LintSummary> {
      const files = migrationsFor(input.migrations.map((ref) => ({ ...ref, environment: input.environment })));
      // Heartbeats, so a worker killed mid-lint is noticed within the heartbeat timeout, not the 10-minute limit.
      const texts = files.map((file) => ({ file: file.fileName, text: readFileSync(file.path, 'utf8') }));
      const findings = await whileHeartbeating(() => lintMigrationTexts(texts, 'post-deploy')).catch((error: Error) => [
        { file: files[0]?.fileName ?? '', line: 1, column: 1, rule: 'lint-unavailable', message: error.message, fix: 'run `dbchange lint` where the worker runs', source: 'dbchange' as const },
      ]);
      const byRule: Record<string, number> = {};
      for (const finding of findings) byRule[finding.rule] = (byRule[finding.rule] ?? 0) + 1;
      return { count: findings.length, byRule, recent: keepRecent(findings, RECENT_FINDINGS) };
    },

    /** Applies consecutive pending migrations of one database; see apply-batch.ts for where a batch ends. */
    async applyMigrations(input: { environment: string; migrations: { version: string; checksum: string }[] }): Promise<BatchResult> {
      const context = Context.current();
      const target = targetNamed(input.environment);
      let current = input.migrations[0]?.version ?? '';
      const heartbeat = setInterval(() => context.heartbeat({ applying: current }), HEARTBEAT_EVERY_MS);
      try {
        const result = await applyBatch(
          {
            pool: pools.pool(target),
            // An environment's only database is addressed by the environment's name, and runs every migration.
            database: target.address === target.environment ? undefined : target.database,
            settings: config.lockRetry,
            precheckTimeoutMs: config.gates.precheckTimeoutMs,
            backfills: backfillTables(config),
            workflowId: context.info.workflowExecution?.workflowId ?? '',
            stop: context.cancellationSignal,
            migrationFor: (version, checksum) => migrationFor({ environment: input.environment, version, checksum }),
            onWaiting: (version, waitingFor) => reportProgress({ step: version, waitingFor }),
            onLockRetry: () => countLockTimeoutRetry(input.environment),
            heartbeat: (fileName) => {
              current = fileName;
              context.heartbeat({ applying: fileName });
            },
            onOutcome: (outcome) => {
              if (outcome.outcome === 'applied') recordMigrationApplied(input.environment, outcome.durationMs);
              log.info(`${outcome.outcome} ${outcome.version} on ${input.environment}`, { environment: input.environment, version: outcome.version, durationMs: outcome.durationMs, lockRetries: outcome.lockRetries });
            },
          },
          input.migrations,
        );
        return { ...result, prechecks: keepRecent(result.prechecks, RECENT_FINDINGS) };
      } catch (error) {
        throw await settleFailure(input.migrations[0]?.version ?? '', error, config.lockRetry.maxAttempts);
      } finally {
        clearInterval(heartbeat);
      }
    },
  };
}

/** The project's backfills by table; a folder that cannot be read names none (lint and the backfill itself say why). */
function backfillTables(config: DbChangeConfig): BackfillTable[] {
  if (!config.migrations.backfills) return [];
  try {
    return readBackfillDir(config.migrations.backfills).map((file) => ({ name: file.name, tables: tablesFilledBy(file) }));
  } catch {
    return [];
  }
}
