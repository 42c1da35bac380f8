// An environment that is a fleet: where its targets are listed, and the waves a rollout walks them in.
import { z } from 'zod';
import { parseDuration } from './duration';
import { durationText } from './yaml-source';
import type { Wave } from './waves';

export { planWaves, planWavesForNames, type Wave, type WaveRange } from './waves';

export const DEFAULT_WAVES: readonly Wave[] = [{ count: 1 }, { percent: 100 }];
export const DEFAULT_FLEET_CONCURRENCY = 8;
export const MAX_FLEET_CONCURRENCY = 256;
export const DEFAULT_HALT_AFTER_FAILURES = 1;
export const DEFAULT_WAVE_APPROVAL_TIMEOUT = '24h';

// Target names appear in addresses such as `cells/cell-042` and in workflow ids: no `/`, no spaces, no capitals.
export const TARGET_NAME_PATTERN = /^[a-z0-9][a-z0-9_.-]*$/;
export const MAX_TARGET_NAME_LENGTH = 63;
export const TARGET_NAME_RULE = `lowercase letters, digits, '_', '.' and '-', starting with a letter or digit, at most ${MAX_TARGET_NAME_LENGTH} characters`;

export function isTargetName(name: string): boolean {
  return name.length <= MAX_TARGET_NAME_LENGTH && TARGET_NAME_PATTERN.test(name);
}


const duration = durationText('30m, 24h, 7d');

const waveSchema = z
  .strictObject({
    count: z.number().int('count must be a whole number').min(1, 'count must be at least 1').optional(),
    percent: z.number().gt(0, 'percent must be above 0').max(100, 'percent must be at most 100').optional(),
  })
  .superRefine((wave, context) => {
    const given = (wave.count === undefined ? 0 : 1) + (wave.percent === undefined ? 0 : 1);
    if (given !== 1) {
      context.addIssue({
        code: 'custom',
        message: given === 0 ? 'a wave is {count: N} or {percent: P}: set one of them' : 'a wave is {count: N} or {percent: P}, not both',
      });
    }
  });

const sourceSchema = z
  .strictObject({
    file: z.string().min(1, 'name a YAML file of targets, relative to dbchange.yaml').optional(),
    query: z.string().min(1, 'write the SELECT that lists the targets (columns name, url)').optional(),
    registryUrl: z.string().min(1, 'set registryUrl, usually as ${REGISTRY_URL}').optional(),
  })
  .superRefine((source, context) => {
    const fail = (path: string[], message: string) => context.addIssue({ code: 'custom', path, message });
    const usesQuery = source.query !== undefined || source.registryUrl !== undefined;
    if (source.file !== undefined && usesQuery) fail([], 'use file, or query with registryUrl, not both');
    else if (source.file === undefined && !usesQuery) fail([], 'set file (a YAML list of targets), or query and registryUrl');
    else if (source.query === undefined && source.registryUrl !== undefined) fail(['query'], 'missing: registryUrl needs a query that lists the targets');
    else if (source.query !== undefined && source.registryUrl === undefined) fail(['registryUrl'], 'missing: the query needs registryUrl, usually ${REGISTRY_URL}');
  });

const wavesSchema = z
  .array(waveSchema)
  .min(1, 'list at least one wave, e.g. [{count: 1}, {percent: 100}]')
  .superRefine((waves, context) => {
    // Percents are cumulative, so one that does not grow, or anything after 100 %, is a wave that can never run.
    let highestPercent = 0;
    waves.forEach((wave, index) => {
      if (highestPercent === 100) {
        context.addIssue({ code: 'custom', path: [index], message: 'comes after {percent: 100}, which already covers every target' });
      } else if (wave.percent !== undefined && wave.percent <= highestPercent) {
        context.addIssue({
          code: 'custom',
          path: [index, 'percent'],
          message: `${wave.percent} is not above an earlier wave's ${highestPercent}: percents are cumulative (until P % of all targets)`,
        });
      }
      highestPercent = Math.max(highestPercent, wave.percent ?? 0);
    });
  });

/** The `fleet:` key of an environment in dbchange.yaml. */
export const fleetSchema = z.strictObject({
  source: sourceSchema,
  waves: wavesSchema.default(DEFAULT_WAVES.map((wave) => ({ ...wave }))),
  concurrency: z
    .number()
    .int('concurrency must be a whole number')
    .min(1, 'concurrency must be at least 1')
    .max(MAX_FLEET_CONCURRENCY, `concurrency must be at most ${MAX_FLEET_CONCURRENCY}`)
    .default(DEFAULT_FLEET_CONCURRENCY),
  haltAfterFailures: z
    .number()
    .int('haltAfterFailures must be a whole number')
    .min(1, 'haltAfterFailures must be at least 1')
    .default(DEFAULT_HALT_AFTER_FAILURES),
  approvalBetweenWaves: z
    .strictObject({
      roles: z.array(z.string().min(1)).min(1, 'name at least one role, e.g. [release-manager]'),
      timeout: duration.default(DEFAULT_WAVE_APPROVAL_TIMEOUT),
    })
    .optional(),
});

export type RawFleetConfig = z.infer<typeof fleetSchema>;

/**
 * registryUrl is a secret like databaseUrl: it reaches activities only, and may still hold an unset `${VAR}`,
 * which the activity that connects names.
 */
export type FleetSource = { kind: 'file'; file: string } | { kind: 'query'; query: string; registryUrl: string };

export interface FleetConfig {
  /** A file source's path is absolute (resolved against the folder of dbchange.yaml). */
  source: FleetSource;
  waves: Wave[];
  /** How many targets of one wave run at once. */
  concurrency: number;
  /** A wave with this many failed targets halts the rollout. */
  haltAfterFailures: number;
  approvalBetweenWaves?: { roles: string[]; timeoutMs: number };
}

/** The part of a fleet's config its rollout carries in workflow history: no source, which may hold a URL. */
export type FleetPlan = Omit<FleetConfig, 'source'>;

export function toFleetConfig(raw: RawFleetConfig, baseDir: string): FleetConfig {
  const { file, query, registryUrl } = raw.source;
  const source: FleetSource =
    file !== undefined ? { kind: 'file', file: file.startsWith('/') ? file : `${baseDir}/${file}` } : { kind: 'query', query: query!, registryUrl: registryUrl! };
  return {
    source,
    waves: raw.waves.map((wave): Wave => (wave.count !== undefined ? { count: wave.count } : { percent: wave.percent! })),
    concurrency: raw.concurrency,
    haltAfterFailures: raw.haltAfterFailures,
    approvalBetweenWaves: raw.approvalBetweenWaves && {
      roles: raw.approvalBetweenWaves.roles,
      timeoutMs: parseDuration(raw.approvalBetweenWaves.timeout)!,
    },
  };
}
