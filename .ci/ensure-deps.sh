#!/usr/bin/env bash
# Installs what pika-sidecar's build, tests and demo need, only when it is missing:
#   node_modules (npm ci); redis-server/redis-cli/redis-benchmark (Debian's redis-server, redis-tools);
#   prometheus + promtool, prometheus-pushgateway, haproxy and nutcracker (Debian's packages of those names).
# As root it installs with apt-get; otherwise it says what to install and fails.
set -euo pipefail
cd "$(dirname "$0")/.."

need_major=20
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt "$need_major" ]; then
  echo "pika-sidecar needs Node.js >= $need_major (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# A symlinked node_modules is a shared install (a git worktree's): `npm ci` would empty it for everyone.
if [ -L node_modules ]; then
  [ -d node_modules/ ] || { echo "node_modules is a dangling symlink ($(readlink node_modules))" >&2; exit 1; }
elif [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

# Debian package -> the binaries the tests run from it. Tests start their own processes on free
# loopback ports; the packaged services are not started (policy-rc.d refuses them during the install).
declare -A package_of=(
  [redis-server]=redis-server [redis-cli]=redis-tools [redis-benchmark]=redis-tools
  [prometheus]=prometheus [promtool]=prometheus
  [prometheus-pushgateway]=prometheus-pushgateway
  [haproxy]=haproxy [nutcracker]=nutcracker
)
missing=()
packages=()
for bin in redis-server redis-cli redis-benchmark prometheus promtool prometheus-pushgateway haproxy nutcracker; do
  if ! command -v "$bin" >/dev/null 2>&1; then
    missing+=("$bin")
    pkg=${package_of[$bin]}
    [[ " ${packages[*]} " == *" $pkg "* ]] || packages+=("$pkg")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's ${packages[*]} (missing: ${missing[*]})"
    export DEBIAN_FRONTEND=noninteractive
    # Keep the packages' services from starting: the tests run their own instances.
    policy=/usr/sbin/policy-rc.d
    had_policy=0
    [ -e "$policy" ] && had_policy=1
    if [ "$had_policy" = 0 ]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy"
      chmod +x "$policy"
    fi
    status=0
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null; } || status=$?
    [ "$had_policy" = 0 ] && rm -f "$policy"
    [ "$status" = 0 ] || exit "$status"
  else
    echo "missing: ${missing[*]}. Install Debian's packages: sudo apt-get install ${packages[*]}" >&2
    echo "(tests that need a missing binary skip and say why; CI installs them all)" >&2
    exit 1
  fi
fi
