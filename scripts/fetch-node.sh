#!/usr/bin/env bash
# Usage: scripts/fetch-node.sh VERSION
#
# Installs an official Node.js build from the npm registry package node-<os>-<arch>@VERSION into
# ${XDG_CACHE_HOME:-$HOME/.cache}/z4j-agent/node-VERSION and prints that folder on stdout. A folder already
# in the cache is reused. The build is unpacked into a temporary sibling folder, checked, and then renamed
# into place, so a half-finished download is never used. Messages go to stderr; exits 1 on any failure.
set -euo pipefail

version=${1:-}
if ! [[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
  echo "fetch-node: invalid version '$version'; pass an exact version such as 24.22.3" >&2
  exit 1
fi

case "$(uname -s)" in
  Linux) os=linux ;;
  Darwin) os=darwin ;;
  *)
    echo "fetch-node: no npm registry Node.js package for the operating system $(uname -s)" >&2
    exit 1
    ;;
esac
case "$(uname -m)" in
  x86_64 | amd64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *)
    echo "fetch-node: no npm registry Node.js package for the CPU architecture $(uname -m)" >&2
    exit 1
    ;;
esac
package="node-$os-$arch@$version"

cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/z4j-agent"
target="$cache_root/node-$version"

if [ -x "$target/bin/node" ]; then
  echo "$target"
  exit 0
fi

mkdir -p "$cache_root"
staging=$(mktemp -d "$cache_root/.node-$version.XXXXXX")
trap 'rm -rf "$staging"' EXIT

echo "fetch-node: downloading $package from the npm registry" >&2
# npm pack checks the tarball against the registry's integrity hash and runs no package scripts.
if ! (cd "$staging" && npm pack "$package" --loglevel=error >/dev/null); then
  echo "fetch-node: npm pack $package failed (npm error above); check the version, the network and the registry (npm config get registry)" >&2
  exit 1
fi

mkdir "$staging/node"
tar -xzf "$staging"/*.tgz -C "$staging/node" --strip-components=1
reported=$("$staging/node/bin/node" --version 2>/dev/null || true)
if [ "$reported" != "v$version" ]; then
  echo "fetch-node: $package unpacked a bin/node that reports '$reported', expected v$version" >&2
  exit 1
fi

# rename(2) within one folder is atomic. When a concurrent run renamed its copy into place first, that copy is used.
if [ ! -e "$target" ]; then
  mv "$staging/node" "$target"
fi
if [ ! -x "$target/bin/node" ]; then
  echo "fetch-node: $target exists but has no executable bin/node; delete that folder and run again" >&2
  exit 1
fi
echo "$target"
