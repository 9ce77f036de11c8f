#!/usr/bin/env bash
# Time `make install` as a new user would see it: a fresh clone and an empty uv package cache.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/autovoice"
cd "$work/autovoice"
start=$(date +%s.%N)
UV_CACHE_DIR="$work/uv-cache" make install >/dev/null
end=$(date +%s.%N)
secs=$(echo "$end - $start" | bc)
echo "make install (fresh clone, empty cache): ${secs} s"
mkdir -p "$repo/bench/results"
printf '{"make_install_fresh_seconds": %s}\n' "$secs" > "$repo/bench/results/install.json"
