// Table and column names as SQL text: quoted for queries, plain for people.
export interface TableRef {
  schema?: string;
  name: string;
}

export function qualified(table: TableRef): string {
  return table.schema ? `${quoteIdent(table.schema)}.${quoteIdent(table.name)}` : quoteIdent(table.name);
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function displayTable(table: TableRef): string {
  return table.schema ? `${table.schema}.${table.name}` : table.name;
}
