#!/usr/bin/env bash
# The project's test command: static checks, the unit and integration suites, then the interop
# suite against the real brain. Ends with one summary line, "tests: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

results_dir=$(mktemp -d)
trap 'rm -rf "$results_dir"' EXIT
status=0

echo "== typecheck"
npx tsc --noEmit || status=1

echo "== lint"
npx biome check . || status=1

echo "== unit and integration tests"
npx vitest run --reporter=default --reporter=json --outputFile.json="$results_dir/unit.json" || status=1

if [ -f vitest.interop.config.ts ] && [ "${Z4J_SKIP_INTEROP:-0}" != 1 ]; then
  echo "== interop tests against the real brain"
  npx vitest run --config vitest.interop.config.ts --reporter=default --reporter=json \
    --outputFile.json="$results_dir/interop.json" || status=1
fi

node scripts/summarize-tests.mjs "$results_dir"/*.json || status=1
exit "$status"
