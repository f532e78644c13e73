#!/usr/bin/env bash
# The project's test command: static checks, the unit and integration suites, then the interop
# suite against the real brain. Ends with one summary line, "tests: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

results_dir=$(mktemp -d)
trap 'rm -rf "$results_dir"' EXIT
status=0

# Node versions: this machine's Node runs every step below in this tree. Unless Z4J_NODE_MATRIX=20, the
# vitest suites also run on Node 24 in a copy of the tree (scripts/test-on-node.sh), because native addons
# must be compiled for each Node ABI.
node_version=$(node -p process.versions.node)
node_major=${node_version%%.*}
node24_version=${Z4J_NODE24_VERSION:-24.22.3}
case "${Z4J_NODE_MATRIX:-20,24}" in
  20,24) other_version=$node24_version ;;
  20) other_version= ;;
  *)
    echo "invalid Z4J_NODE_MATRIX='$Z4J_NODE_MATRIX'; use 20,24 (the default) or 20 (this machine's Node only)" >&2
    exit 2
    ;;
esac
if [ "${other_version%%.*}" = "$node_major" ]; then
  echo "this machine already runs Node $node_version, so the Node $other_version run in a copy is skipped"
  other_version=
fi
run_interop=0
if [ -f vitest.interop.config.ts ] && [ "${Z4J_SKIP_INTEROP:-0}" != 1 ]; then
  run_interop=1
fi

echo "== typecheck"
npx tsc --noEmit || status=1

echo "== lint"
npx biome check . || status=1

echo "== unit and integration tests"
npx vitest run --reporter=default --reporter=json --outputFile.json="$results_dir/unit-node$node_major.json" || status=1

if [ "$run_interop" = 1 ]; then
  echo "== interop tests against the real brain"
  npx vitest run --config vitest.interop.config.ts --reporter=default --reporter=json \
    --outputFile.json="$results_dir/interop-node$node_major.json" || status=1
fi

if [ -n "$other_version" ]; then
  bash scripts/test-on-node.sh "$other_version" "$results_dir" || status=1
fi

# One line per Node version, then the total over every report each run was expected to write, so a run
# that crashed or never started counts as a failure.
reports=()
print_run() {
  local version=$1 major=${1%%.*} path line="no test report"
  local expected=("$results_dir/unit-node$major.json") present=() missing=()
  [ "$run_interop" = 1 ] && expected+=("$results_dir/interop-node$major.json")
  reports+=("${expected[@]}")
  for path in "${expected[@]}"; do
    if [ -f "$path" ]; then present+=("$path"); else missing+=("$(basename "$path")"); fi
  done
  if [ ${#present[@]} -gt 0 ]; then
    line=$(node scripts/summarize-tests.mjs "${present[@]}" | sed "s/^tests: //")
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    line+=", missing ${missing[*]} (see the output of that run above)"
  fi
  echo "node $version: $line"
}
print_run "$node_version"
[ -n "$other_version" ] && print_run "$other_version"
node scripts/summarize-tests.mjs "${reports[@]}" || status=1
exit "$status"
