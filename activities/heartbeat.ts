// Heartbeats while an activity works, so a worker that dies mid-activity is noticed within the heartbeat timeout.
import { Context } from '@temporalio/activity';

const HEARTBEAT_EVERY_MS = 1_000;

export async function whileHeartbeating<T>(work: () => Promise<T>): Promise<T> {
  const context = Context.current();
  const timer = setInterval(() => context.heartbeat(), HEARTBEAT_EVERY_MS);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}
