#!/usr/bin/env bash
# Usage: scripts/test-on-node.sh VERSION RESULTS_DIR
#
# Runs the vitest suites on Node.js VERSION without touching this tree. The script copies the project
# (without node_modules, dist and .git) into a temporary folder and runs `npm ci` there with that Node first
# on PATH, so native addons such as better-sqlite3 compile for its ABI. It then runs the unit and integration
# suite, and the interop suite when vitest.interop.config.ts exists and Z4J_SKIP_INTEROP is not 1.
# The vitest JSON reports go to RESULTS_DIR as unit-node<major>.json and interop-node<major>.json.
# Exits 1 when the Node build cannot be fetched, the install fails or a suite fails.
# Set Z4J_KEEP_NODE_COPY=1 to keep the copy for debugging.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

version=${1:-}
results_dir=${2:-}
if [ -z "$version" ] || [ -z "$results_dir" ]; then
  echo "usage: scripts/test-on-node.sh VERSION RESULTS_DIR" >&2
  exit 2
fi
mkdir -p "$results_dir"
results_dir=$(cd "$results_dir" && pwd)
major=${version%%.*}

if ! node_home=$(bash "$repo/scripts/fetch-node.sh" "$version"); then
  echo "test-on-node: Node.js $version is not available, so its test run cannot start" >&2
  exit 1
fi

# The registry package ships only bin/node, so npm is this machine's npm. Its script runs on whichever node
# is first on PATH, and it applies package.json's allowScripts.
npm_cli=$(command -v npm)

workspace=$(mktemp -d "${TMPDIR:-/tmp}/z4j-agent-node$major.XXXXXX")
if [ "${Z4J_KEEP_NODE_COPY:-0}" = 1 ]; then
  echo "test-on-node: keeping the copy in $workspace" >&2
else
  trap 'rm -rf "$workspace"' EXIT
fi
# The copy keeps the repository's neighbourhood: tests read the golden vectors from ../shared.
copy="$workspace/main"
mkdir "$copy"
if [ -d "$repo/../shared" ]; then
  ln -s "$(cd "$repo/../shared" && pwd)" "$workspace/shared"
fi
tar -C "$repo" --exclude=node_modules --exclude=./dist --exclude=./.git --exclude=./coverage -cf - . |
  tar -C "$copy" -xf -

export PATH="$node_home/bin:$PATH"
# node-gyp must compile against the headers of the Node that loads the addon. A nodedir set in an npmrc
# points at the machine's Node, and the binding built from it would fail to load with an ABI mismatch.
export npm_config_nodedir="$node_home"
# Compiling avoids prebuild-install's download of a prebuilt binding from GitHub. npm 11 warns that it does
# not know this key, but it still passes the variable on to install scripts, where prebuild-install reads it.
export npm_config_build_from_source=true

running=$(node --version)
if [ "$running" != "v$version" ]; then
  echo "test-on-node: node on PATH reports $running, expected v$version" >&2
  exit 1
fi

cd "$copy" || exit 1
echo "== npm ci on Node $version (in $copy)"
if ! "$npm_cli" ci --no-audit --no-fund; then
  echo "test-on-node: npm ci failed on Node $version" >&2
  exit 1
fi

status=0
echo "== unit and integration tests on Node $version"
node node_modules/vitest/vitest.mjs run --reporter=default --reporter=json \
  --outputFile.json="$results_dir/unit-node$major.json" || status=1

if [ -f vitest.interop.config.ts ] && [ "${Z4J_SKIP_INTEROP:-0}" != 1 ]; then
  echo "== interop tests against the real brain on Node $version"
  node node_modules/vitest/vitest.mjs run --config vitest.interop.config.ts --reporter=default --reporter=json \
    --outputFile.json="$results_dir/interop-node$major.json" || status=1
fi
echo "== Node $version run finished in ${SECONDS} s"
exit "$status"
