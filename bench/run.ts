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
  const lines = [
    TABLE_START,
    `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC in one run of \`npm run bench\` (${minutes} min), medians over ${settings.reps} repetitions${settings.reps < 5 ? ' (**a smoke run: fewer than 5 repetitions**)' : ''}${settings.blockerMs !== 10_000 ? `, blocker ${settings.blockerMs} ms (**not the 10 s of the goal**)` : ''}.`,
    '',
    `Machine: ${machine.cores} cores (${machine.cpu}), ${machine.memoryGb} GB memory, ${machine.os}; Node ${machine.node}; PostgreSQL ${machine.postgres}; ${machine.temporalCli.split('\n')[0]} (dev server, SQLite in memory). PostgreSQL, Temporal and the benchmark share the machine.`,
    '',
  ];
  for (const result of results) {
    lines.push(`### ${result.title}`, '', result.setup, '', `| method | ${result.columns.join(' | ')} |`, `|---|${result.columns.map(() => '---:').join('|')}|`);
    for (const row of result.rows) lines.push(`| ${row.method} | ${result.columns.map((column) => row.medians[column]).join(' | ')} |`);
    lines.push('', '| goal | measured | met |', '|---|---|---|');
    for (const goal of result.goals) lines.push(`| ${goal.goal} | ${goal.measured} | ${goal.met ? 'met' : `**not met**${goal.limitedBy ? `: limited by ${goal.limitedBy}` : ''}`} |`);
    lines.push('');
  }
  lines.push(TABLE_END);
  const current = readFileSync(README, 'utf8');
  const start = current.indexOf(TABLE_START);
  const end = current.indexOf(TABLE_END);
  const next = start >= 0 && end > start ? `${current.slice(0, start)}${lines.join('\n')}${current.slice(end + TABLE_END.length)}` : `${current.trimEnd()}\n\n${lines.join('\n')}\n`;
  writeFileSync(README, next);
}

main().catch((error: unknown) => {
  console.error(`dbchange bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
