// The Temporal frontend's HTTP API (server started with --http-port): signal and query a pipeline with plain HTTP.
// JSON values in "input" are sent as json/plain payloads, which is what dbchange's workflows read.

export async function signalOverHttp(baseUrl: string, namespace: string, workflowId: string, signal: string, payload: unknown): Promise<void> {
  const url = `${baseUrl}/api/v1/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}/signal/${encodeURIComponent(signal)}`;
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: [payload] }) });
  if (!response.ok) throw new Error(`POST ${url} answered ${response.status}: ${await response.text()}`);
}

/** Runs a query (e.g. `status`) and returns its JSON answer. */
export async function queryOverHttp<T>(baseUrl: string, namespace: string, workflowId: string, query: string): Promise<T> {
  const url = `${baseUrl}/api/v1/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}/query/${encodeURIComponent(query)}`;
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({}) });
  const body = await response.text();
  if (!response.ok) throw new Error(`POST ${url} answered ${response.status}: ${body}`);
  const answer = JSON.parse(body) as { queryResult?: unknown[] };
  if (!answer.queryResult?.length) throw new Error(`query ${query} on ${workflowId} answered without a result: ${body}`);
  return answer.queryResult[0] as T;
}
