#!/usr/bin/env node
// Runs the compiled CLI; `npm run build` (or scripts/setup.sh) compiles it.
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const entry = join(__dirname, '..', 'dist', 'cli', 'main.js');
if (!existsSync(entry)) {
  process.stderr.write('dbchange: not built yet; run `bash scripts/setup.sh` (or `npm run build`) in the dbchange folder\n');
  process.exit(1);
}
require(entry)
  .main(process.argv)
  .then((code) => process.exit(code));
