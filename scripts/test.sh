#!/usr/bin/env bash
# Runs every test on a fresh machine: installs what is missing, builds, starts a throw-away
# RabbitMQ and PostgreSQL on private ports, runs ctest (labels unit, integration, e2e), stops
# what it started, and exits non-zero on any failure.
#   scripts/test.sh                 all labels
#   scripts/test.sh -L unit         extra arguments go to ctest
#   BUILD_TYPE=Sanitize scripts/test.sh   the same under ASan + UBSan
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

"$here/setup.sh"
build_dir=$("$here/build.sh" | tail -n 1)

# A private runtime folder and ports of this run's own, so a running local stack is untouched.
start_private_infra "${CONVOY_TEST_RUN_DIR:-$CONVOY_ROOT/.run/test}" "${CONVOY_TEST_AMQP_PORT:-22672}" \
  "${CONVOY_TEST_AMQP_DIST_PORT:-22682}" "${CONVOY_TEST_AMQP_MGMT_PORT:-22673}" \
  "${CONVOY_TEST_AMQP_PROM_PORT:-22692}" "${CONVOY_TEST_PG_PORT:-22432}"

if [ "${BUILD_TYPE:-}" = Sanitize ]; then
  export LSAN_OPTIONS="suppressions=$CONVOY_ROOT/tests/sanitizer/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"
fi

cd "$build_dir"
ctest --output-on-failure --timeout 600 "$@"
