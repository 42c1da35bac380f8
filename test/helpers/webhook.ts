// A Slack-style webhook receiver on a free local port: collects every notification dbchange posts.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface WebhookReceiver {
  /** Includes a path that looks like a token, so tests can prove the URL never leaks. */
  url: string;
  notifications: { text: string; dbchange: { event: string; workflowId: string } }[];
  close(): void;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const notifications: WebhookReceiver['notifications'] = [];
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      notifications.push(JSON.parse(body));
      response.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/T000/B000/secret-token`,
    notifications,
    close: () => server.close(),
  };
}
