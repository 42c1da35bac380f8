// Fresh, empty fleet targets for one measurement: schemas in one database, or separate databases; dropped afterwards.
import { withClient } from './databases';

export interface FleetTargetRow {
  name: string;
  url: string;
  /** Set for a schema target: both tools keep schema_migrations (and dbchange its ledger) inside it. */
  schema?: string;
}

export interface TargetSet {
  targets: FleetTargetRow[];
  /** How many targets hold `expected` rows in their schema_migrations: the work both tools must finish. */
  countMigrated(expected: number): Promise<number>;
  drop(): Promise<void>;
}

/** t0001, t0002, …: valid as a fleet target name, a schema name and a database name suffix. */
export function targetName(index: number, count: number): string {
  return `t${String(index + 1).padStart(Math.max(4, String(count).length), '0')}`;
}

/** `count` empty schemas in one new database: how a multi-tenant app with a schema per tenant is laid out. */
export async function createSchemaTargets(adminUrl: string, tag: string, count: number): Promise<TargetSet> {
  const database = uniqueName(tag);
  await withClient(adminUrl, (client) => client.query(`CREATE DATABASE ${database}`));
  const url = databaseUrl(adminUrl, database);
  const targets = Array.from({ length: count }, (_, index) => ({ name: targetName(index, count), url, schema: targetName(index, count) }));
  try {
    // One round trip: a thousand CREATE SCHEMA statements take a few hundred milliseconds together.
    await withClient(url, (client) => client.query(targets.map((target) => `CREATE SCHEMA ${target.schema};`).join('\n')));
  } catch (error) {
    await dropDatabases(adminUrl, [database]);
    throw error;
  }
  return {
    targets,
    countMigrated: (expected) => withClient(url, async (client) => {
      let migrated = 0;
      for (const target of targets) if ((await versionsIn(client, `${target.schema}.schema_migrations`)) === expected) migrated++;
      return migrated;
    }),
    drop: () => dropDatabases(adminUrl, [database]),
  };
}

/** `count` new empty databases, one target each. */
export async function createDatabaseTargets(adminUrl: string, tag: string, count: number): Promise<TargetSet> {
  const base = uniqueName(tag);
  const names: string[] = [];
  try {
    // One at a time: CREATE DATABASE copies template1 and refuses while another copy of it is in progress.
    await withClient(adminUrl, async (client) => {
      for (let index = 0; index < count; index++) {
        const name = `${base}_${targetName(index, count)}`;
        await client.query(`CREATE DATABASE ${name}`);
        names.push(name);
      }
    });
  } catch (error) {
    await dropDatabases(adminUrl, names);
    throw error;
  }
  const targets = names.map((name, index) => ({ name: targetName(index, count), url: databaseUrl(adminUrl, name) }));
  return {
    targets,
    async countMigrated(expected) {
      let migrated = 0;
      for (const target of targets) if ((await withClient(target.url, (client) => versionsIn(client, 'schema_migrations'))) === expected) migrated++;
      return migrated;
    },
    drop: () => dropDatabases(adminUrl, names),
  };
}

/** The fleet's target file, as dbchange.yaml's `fleet.source.file` reads it. */
export function targetsYaml(targets: FleetTargetRow[]): string {
  return `${targets.map((target) => `- { name: ${target.name}, databaseUrl: "${target.url}"${target.schema ? `, schema: ${target.schema}` : ''} }`).join('\n')}\n`;
}

async function versionsIn(client: { query(sql: string): Promise<{ rows: { n: string }[] }> }, table: string): Promise<number> {
  // A target that no tool reached has no schema_migrations yet: it counts as not migrated.
  return client.query(`SELECT count(*) AS n FROM ${table}`).then((result) => Number(result.rows[0].n), () => 0);
}

async function dropDatabases(adminUrl: string, names: string[]): Promise<void> {
  await withClient(adminUrl, async (client) => {
    for (const name of names) await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  });
}

function uniqueName(tag: string): string {
  return `dbchange_bench_fleet_${tag}_${Date.now().toString(36)}`;
}

function databaseUrl(adminUrl: string, database: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return url.toString();
}
