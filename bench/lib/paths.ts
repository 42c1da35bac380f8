// The repository root, from sources (bench/lib) and from compiled code (dist/bench/lib) alike.
import { resolve } from 'node:path';

export const REPO_ROOT = resolve(__dirname, __dirname.includes('/dist/') ? '../../..' : '../..');
