// Slack-compatible webhook notifications. Texts are built from names and versions only, never connection strings.
import { log } from '@temporalio/activity';

export interface Notification {
  text: string;
  event: 'started' | 'environment-done' | 'wave-done' | 'blocked' | 'finished' | 'waiting' | 'rolling-back';
  workflowId: string;
  environment?: string;
}

export async function postNotification(webhookUrl: string | undefined, notification: Notification): Promise<void> {
  log.info('notification', { event: notification.event, workflowId: notification.workflowId, text: notification.text });
  if (!webhookUrl) return;
  const response = await fetch(webhookUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ text: notification.text, dbchange: notification }),
    signal: AbortSignal.timeout(10_000),
  });
  // The URL is a secret (it carries the token): report the status only.
  if (!response.ok) throw new Error(`notification webhook answered HTTP ${response.status}`);
}
