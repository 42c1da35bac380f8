// The last guard before a page leaves the server: database URLs and their passwords from dbchange.yaml are cut
// out of it, whatever path one took to get there (an error message, a future field).
import { allTargets, type DbChangeConfig } from '../core/config';

const HIDDEN = '(hidden)';

/** Each configured URL (database, webhook), and the password inside each, longest first. */
export function secretsOf(config: DbChangeConfig): string[] {
  const urls = [...allTargets(config).map((target) => target.url), config.webhookUrl].filter((url): url is string => Boolean(url));
  const passwords = urls.flatMap((url) => {
    try {
      const password = decodeURIComponent(new URL(url).password);
      return password ? [password] : [];
    } catch {
      return [];
    }
  });
  return [...new Set([...urls, ...passwords])].sort((a, b) => b.length - a.length);
}

export function hideSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) out = out.split(secret).join(HIDDEN);
  return out;
}
