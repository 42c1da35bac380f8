// Change-lock windows from config: no change runs while one is in force.
import type { ChangeLockWindow } from './config';

export function activeChangeLock(windows: ChangeLockWindow[], now: Date): ChangeLockWindow | undefined {
  const at = now.getTime();
  return windows.find((window) => Date.parse(window.start) <= at && at < Date.parse(window.end));
}
