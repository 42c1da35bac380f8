// `npm run bench`: runs the benchmarks side by side in one run, writes bench/results/<name>.json and bench/README.md.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { withClient } from './lib/databases';
import { REPO_ROOT } from './lib/paths';
import type { BenchResult } from './lib/result';
import { readSettings, type BenchSettings } from './lib/settings';
import { startBenchServers, type BenchServers } from './lib/temporal';
import { runBackfill } from './backfill';
import { runCluster } from './cluster';
import { runDashboard } from './dashboard';
import { runDrift } from './drift';
import { runFleet } from './fleet';
import { runHistory } from './history';
import { runHold } from './hold';
import { runLockStall } from './lock-stall';
import { runRecovery } from './recovery';
import { runScale } from './scale';
import { runThroughput } from './throughput';

const BENCHMARKS: Record<string, (settings: BenchSettings, servers: BenchServers) => Promise<BenchResult>> = {
  'lock-stall': runLockStall,
  throughput: runThroughput,
  recovery: runRecovery,
  scale: runScale,
  history: runHistory,
  hold: runHold,
  fleet: runFleet,
  dashboard: runDashboard,
  cluster: runCluster,
  drift: runDrift,
  backfill: runBackfill,
};
const RESULTS_DIR = join(REPO_ROOT, 'bench/results');
const README = join(REPO_ROOT, 'bench/README.md');
const TABLE_START = '<!-- results:start -->';
const TABLE_END = '<!-- results:end -->';

async function main(): Promise<void> {
  const settings = readSettings();
  const names = settings.only.length > 0 ? settings.only : Object.keys(BENCHMARKS);
  for (const name of names) if (!BENCHMARKS[name]) throw new Error(`unknown benchmark ${name}; known: ${Object.keys(BENCHMARKS).join(', ')}`);
  const started = Date.now();
  const machine = await describeMachine(settings.adminUrl);
  console.error(`dbchange bench: ${names.join(', ')}; ${settings.reps} repetitions; ${machine.cpu}`);
  const servers = await startBenchServers();
  const results: BenchResult[] = [];
  try {
    for (const name of names) {
      const result = await BENCHMARKS[name](settings, servers);
      results.push(result);
      mkdirSync(RESULTS_DIR, { recursive: true });
      writeFileSync(join(RESULTS_DIR, `${name}.json`), `${JSON.stringify({ ...result, machine, settings: { ...settings, adminUrl: undefined }, at: new Date().toISOString() }, null, 2)}\n`);
    }
  } finally {
    await servers.standard.close();
    await servers.fast.close();
  }
  const minutes = ((Date.now() - started) / 60_000).toFixed(1);
  writeReadme(results, machine, settings, minutes);
  console.error(`dbchange bench: done in ${minutes} min; results in bench/results/, table in bench/README.md`);
}

interface Machine {
  cpu: string;
  cores: number;
  memoryGb: number;
  node: string;
  postgres: string;
  temporalCli: string;
  os: string;
}

async function describeMachine(adminUrl: string): Promise<Machine> {
  const postgres = await withClient(adminUrl, async (client) => String((await client.query('SHOW server_version')).rows[0].server_version));
  const cli = execFileSync('bash', [join(REPO_ROOT, 'scripts/temporal-cli.sh')], { encoding: 'utf8' }).trim();
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    postgres,
    temporalCli: execFileSync(cli, ['--version'], { encoding: 'utf8' }).trim(),
    os: execFileSync('uname', ['-sr'], { encoding: 'utf8' }).trim(),
  };
}

function writeReadme(results: BenchResult[], machine: Machine, settings: BenchSettings, minutes: string): void {
  const current = readFileSync(README, 'utf8');
  const start = current.indexOf(TABLE_START);
  const end = current.indexOf(TABLE_END);
  const measuredAt = `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  const partial = settings.only.length > 0 && settings.only.length < Object.keys(BENCHMARKS).length;
  let block: string;
  if (partial && start >= 0 && end > start) {
    // A run of some benchmarks replaces only their sections: the others keep the full run they came from.
    block = current.slice(start + TABLE_START.length, end);
    const note = (result: BenchResult) => `Measured ${measuredAt} in a run of \`BENCH_ONLY=${settings.only.join(',')} npm run bench\` alone (${minutes} min), medians over ${result.reps} repetition${result.reps === 1 ? '' : 's'}, on the machine above.`;
    for (const result of results) block = replaceSection(block, result.title, [note(result), '', ...sectionLines(result)]);
  } else {
    block = [
      '',
      `Measured ${measuredAt} in one run of \`npm run bench\` (${minutes} min), medians over ${settings.reps} repetitions${settings.reps < 5 ? ' (**a smoke run: fewer than 5 repetitions**)' : ''}${settings.blockerMs !== 10_000 ? `, blocker ${settings.blockerMs} ms (**not the 10 s of the goal**)` : ''}.`,
      '',
      `Machine: ${machine.cores} cores (${machine.cpu}), ${machine.memoryGb} GB memory, ${machine.os}; Node ${machine.node}; PostgreSQL ${machine.postgres}; ${machine.temporalCli.split('\n')[0]} (dev server, SQLite in memory). PostgreSQL, Temporal and the benchmark share the machine.`,
      '',
      ...results.flatMap((result) => [`### ${result.title}`, '', ...sectionLines(result), '']),
      '',
    ].join('\n');
  }
  const table = `${TABLE_START}${block}${TABLE_END}`;
  const next = start >= 0 && end > start ? `${current.slice(0, start)}${table}${current.slice(end + TABLE_END.length)}` : `${current.trimEnd()}\n\n${table}\n`;
  writeFileSync(README, next);
}

/** One benchmark's part of the table: its set-up, medians per method, and goals. */
function sectionLines(result: BenchResult): string[] {
  const lines = [result.setup, '', `| method | ${result.columns.join(' | ')} |`, `|---|${result.columns.map(() => '---:').join('|')}|`];
  for (const row of result.rows) lines.push(`| ${row.method} | ${result.columns.map((column) => row.medians[column]).join(' | ')} |`);
  lines.push('', '| goal | measured | met |', '|---|---|---|');
  for (const goal of result.goals) lines.push(`| ${goal.goal} | ${goal.measured} | ${goal.met ? 'met' : `**not met**${goal.limitedBy ? `: limited by ${goal.limitedBy}` : ''}`} |`);
  return lines;
}

/** Replaces the body of `### title` in `block` (up to the next heading), or adds the section at the end. */
function replaceSection(block: string, title: string, body: string[]): string {
  const heading = `\n### ${title}\n`;
  const section = `${heading}\n${body.join('\n')}\n`;
  const at = block.indexOf(heading);
  if (at < 0) return `${block.trimEnd()}\n${section}\n`;
  const nextHeading = block.indexOf('\n### ', at + heading.length);
  return `${block.slice(0, at)}${section}${nextHeading < 0 ? '\n' : block.slice(nextHeading)}`;
}

main().catch((error: unknown) => {
  console.error(`dbchange bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
