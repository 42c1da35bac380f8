// What ran on an earlier environment is exactly what runs on the next one: same file, same checksum.
import { markOutOfOrder, newestAppliedPostDeploy, outOfOrderFinding, describeOutOfOrder, describeRefusedOutOfOrder, type OutOfOrder, type OutOfOrderFinding, type OutOfOrderPolicy } from './out-of-order';
import { comparePending, describeEdited, type EditedMigration, type FileState } from './pending';

/** Checksums are sha256 hex; this many characters name one in a message. */
export const CHECKSUM_SHOWN = 12;

/** What one environment's database says has run. */
export interface LedgerState {
  versions: ReadonlySet<string>;
  /** Checksum of the latest applied or marked-complete ledger row per version. */
  checksums: ReadonlyMap<string, string>;
}

/** A pending file whose bytes differ from what an earlier environment ran under the same version. */
export interface PromotionMismatch {
  version: string;
  fileName: string;
  /** Where it is about to run, and with which checksum (the file's now). */
  environment: string;
  checksum: string;
  /** The earlier environment (in dbchange.yaml's order) that ran it, and the checksum it recorded. */
  ranOn: string;
  ranChecksum: string;
}

export interface EnvironmentReview<T extends FileState> {
  environment: string;
  pending: (T & { outOfOrder?: OutOfOrder })[];
  /** Applied here, changed since. */
  edited: EditedMigration[];
  /** Pending here, ran elsewhere earlier with other bytes. */
  mismatches: PromotionMismatch[];
  outOfOrder?: OutOfOrderFinding;
}

/** The environments before `environment` in dbchange.yaml's order, whether or not a pipeline walks them. */
export function environmentsBefore<E extends { name: string }>(environments: E[], environment: string): E[] {
  const index = environments.findIndex((item) => item.name === environment);
  return index < 0 ? [] : environments.slice(0, index);
}

export function findPromotionMismatches(environment: string, pending: FileState[], earlier: { environment: string; state: LedgerState }[]): PromotionMismatch[] {
  const mismatches: PromotionMismatch[] = [];
  for (const file of pending) {
    for (const { environment: ranOn, state } of earlier) {
      const ranChecksum = state.checksums.get(file.version);
      if (ranChecksum !== undefined && ranChecksum !== file.checksum) {
        mismatches.push({ version: file.version, fileName: file.fileName, environment, checksum: file.checksum, ranOn, ranChecksum });
      }
    }
  }
  return mismatches;
}

/** Everything one environment's ledger, and the ledgers before it, say about the post-deploy files. */
export function reviewEnvironment<T extends FileState>(files: T[], environment: string, state: LedgerState, earlier: { environment: string; state: LedgerState }[]): EnvironmentReview<T> {
  const { pending, edited } = comparePending(files, state);
  const marked = markOutOfOrder(pending, newestAppliedPostDeploy(files.map((file) => file.version), state));
  return {
    environment,
    pending: marked,
    edited,
    mismatches: findPromotionMismatches(environment, pending, earlier),
    outOfOrder: outOfOrderFinding(environment, marked),
  };
}

/**
 * `promotion refused: x.sql would run on production as 1a2b3c4d5e6f, but staging ran 9f8e7d6c5b4a; …`:
 * the file, both checksums and both environments.
 */
export function describePromotionMismatches(mismatches: PromotionMismatch[]): string {
  const items = mismatches.map(
    (item) => `${item.fileName} would run on ${item.environment} as ${short(item.checksum)}, but ${item.ranOn} ran ${short(item.ranChecksum)}`,
  );
  const ranOn = [...new Set(mismatches.map((item) => item.ranOn))];
  const restore = mismatches.length === 1 ? `restore the file as it ran on ${ranOn[0]}` : `restore the files as they ran on ${ranOn.join(' and ')}`;
  return `promotion refused: ${items.join('; ')}; what runs must be what ran before: ${restore} and put the change in a new migration`;
}

export interface StartAssessment {
  /** Each would block the pipeline: `pdm execute` refuses with them. */
  refusals: string[];
  /** Worth a line on stderr, not a refusal. */
  warnings: string[];
  /** Environments whose ledger could not be read here, and why; the pipeline checks them before each environment. */
  unchecked: { environment: string; reason: string }[];
}

/** One environment's ledger as the CLI found it: read, or why not. */
export interface LedgerReading {
  /** The database's address (`staging`, `staging/ci`). */
  environment: string;
  /** Its name within the environment: promotion compares a database with the same one on earlier environments. */
  database?: string;
  state?: LedgerState;
  unreadable?: string;
}

/**
 * What `pdm execute` can tell before it starts a pipeline over `walked` (database addresses, config order): every block the
 * pipeline would meet on its listings (edited files, promotion mismatches, refused out-of-order versions).
 * `ledgers` holds every configured environment, in config order, since earlier ones count even when not walked.
 */
export function assessPipelineStart(files: FileState[], ledgers: LedgerReading[], walked: string[], policy: OutOfOrderPolicy): StartAssessment {
  const refusals: string[] = [];
  const unchecked = new Map<string, string>();
  const outOfOrder: OutOfOrderFinding[] = [];
  const readable = (reading: LedgerReading): reading is LedgerReading & { state: LedgerState } => {
    if (reading.state) return true;
    unchecked.set(reading.environment, reading.unreadable ?? 'not read');
    return false;
  };
  for (const environment of walked) {
    const own = ledgers.find((reading) => reading.environment === environment);
    if (!own) continue;
    const before = ledgers.slice(0, ledgers.indexOf(own)).filter((reading) => reading.database === own.database).filter(readable);
    if (!readable(own)) continue;
    const review = reviewEnvironment(files, environment, own.state, before);
    if (review.edited.length > 0) refusals.push(describeEdited(environment, review.edited));
    if (review.mismatches.length > 0) refusals.push(describePromotionMismatches(review.mismatches));
    if (review.outOfOrder) outOfOrder.push(review.outOfOrder);
  }
  const warnings: string[] = [];
  if (outOfOrder.length > 0 && policy === 'refuse') refusals.push(describeRefusedOutOfOrder(outOfOrder, 'start'));
  if (outOfOrder.length > 0 && policy === 'warn') warnings.push(`out of order: ${describeOutOfOrder(outOfOrder)}; they will be applied (migrations.outOfOrder: warn)`);
  const inConfigOrder = ledgers.filter((reading) => unchecked.has(reading.environment));
  return { refusals, warnings, unchecked: inConfigOrder.map((reading) => ({ environment: reading.environment, reason: unchecked.get(reading.environment)! })) };
}

/** The one stderr line when some ledgers could not be read up front. */
export function describeUnchecked(unchecked: StartAssessment['unchecked']): string {
  const reasons = unchecked.map((item) => `${item.environment}: ${item.reason}`).join('; ');
  return `could not check ${unchecked.map((item) => item.environment).join(', ')} up front (${reasons}); the pipeline checks edited files, promotion checksums and out-of-order versions before each environment`;
}

function short(checksum: string): string {
  return checksum.slice(0, CHECKSUM_SHOWN);
}
