#!/usr/bin/env bash
# Installs what pika-sidecar's build, tests and demo need, only when it is missing:
#   node_modules (npm ci) and redis-server/redis-cli/redis-benchmark (Debian's redis-server, redis-tools).
# As root it installs with apt-get; otherwise it says what to install and fails.
set -euo pipefail
cd "$(dirname "$0")/.."

need_major=20
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt "$need_major" ]; then
  echo "pika-sidecar needs Node.js >= $need_major (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

missing=()
for bin in redis-server redis-cli redis-benchmark; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing redis-server and redis-tools from Debian's packages (missing: ${missing[*]})"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends redis-server redis-tools >/dev/null
  else
    echo "missing: ${missing[*]}. Install Debian's packages: sudo apt-get install redis-server redis-tools" >&2
    exit 1
  fi
fi
