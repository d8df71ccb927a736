#!/usr/bin/env bash
# Installs what convoy needs to build, test and run, from Debian's packages. Idempotent:
# does nothing when every package is present.
set -euo pipefail
packages=(
  build-essential cmake ccache pkg-config clang libclang-rt-dev clang-format
  libcpprest-dev libboost-dev libssl-dev librabbitmq-dev libpq-dev rapidjson-dev
  libgoogle-glog-dev libgflags-dev libgtest-dev libgmock-dev libre2-dev
  rabbitmq-server postgresql curl wrk python3 python3-yaml
  python3-pika  # scripts/bench-floors.sh's broker consumer (the broker's CPU per delivered message)
  openssl  # the TLS test (amqp_tls_test) and CONVOY_AMQP_TLS_PORT make throw-away certificates
  prometheus  # promtool checks the alert rules (deploy/prometheus); its server is not started
  docker-compose  # `docker-compose config` checks every compose profile (no Docker engine is used)
  chromium  # the console's browser test (tests/browser): Debian's, never a downloaded browser
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Node.js and npm run the deploy test's schema validation: Debian's, unless a node is already there.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
else
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  # policy-rc.d keeps the packaged system services from being started: convoy runs its own.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# The schema validator's packages, pinned by tests/deploy/package-lock.json (kubernetes-models and
# the KEDA, prometheus-operator and CloudNativePG models), from the npm registry.
deploy_checks="$(cd "$(dirname "$0")/.." && pwd)/tests/deploy"
if [ ! -f "$deploy_checks/node_modules/.package-lock.json" ] ||
   [ "$deploy_checks/package-lock.json" -nt "$deploy_checks/node_modules/.package-lock.json" ]; then
  echo "setup: npm ci in tests/deploy"
  (cd "$deploy_checks" && npm ci --no-audit --no-fund --loglevel=error)
fi
# The console's browser test: playwright-core (which never downloads a browser: it drives
# /usr/bin/chromium) and axe-core, pinned by tests/browser/package-lock.json.
browser_checks="$(cd "$(dirname "$0")/.." && pwd)/tests/browser"
if [ ! -f "$browser_checks/node_modules/.package-lock.json" ] ||
   [ "$browser_checks/package-lock.json" -nt "$browser_checks/node_modules/.package-lock.json" ]; then
  echo "setup: npm ci in tests/browser"
  (cd "$browser_checks" && npm ci --no-audit --no-fund --loglevel=error)
fi
