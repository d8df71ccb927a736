#!/usr/bin/env bash
# Builds the webhook fuzz target with clang (libFuzzer + ASan + UBSan) and runs it for a while
# over a seed corpus of every webhook fixture.
#   tests/fuzz/run_fuzz.sh OUT_DIR SECONDS      (ctest runs it for 20 s; see README for longer runs)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?out dir}; seconds=${2:-20}
fixtures=${CONVOY_FIXTURES_DIR:-$root/tests/fixtures/meta}
mkdir -p "$out/corpus" "$out/crashes"
clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -DRAPIDJSON_HAS_STDSTRING=1 \
  -DRAPIDJSON_PARSE_DEFAULT_FLAGS=kParseIterativeFlag \
  -I"$root/services/ingress" -I"$root/services/common/include" \
  "$root/tests/fuzz/webhook_fuzz.cpp" "$root/services/ingress/webhook.cpp" "$root/services/common/status.cpp" \
  "$root/services/common/crypto.cpp" \
  -lcrypto -o "$out/webhook_fuzz"
# Any UB report stops the run (and fails the test), except the suppressed third-party one.
export UBSAN_OPTIONS="suppressions=$root/tests/sanitizer/ubsan.supp:halt_on_error=1:print_stacktrace=1"
cp "$fixtures"/webhooks/*.json "$fixtures"/webhooks/*.raw "$fixtures"/webhooks/pywa/*.json \
  "$root"/tests/fixtures/webhooks/threads/*.json "$out/corpus/" 2>/dev/null || true
"$out/webhook_fuzz" -max_total_time="$seconds" -max_len=65536 -timeout=10 -artifact_prefix="$out/crashes/" \
  -print_final_stats=1 "$out/corpus" > "$out/fuzz.log" 2>&1 || {
  grep -E "runtime error|ERROR|SUMMARY|#[0-9] " "$out/fuzz.log" | head -n 30; echo "fuzzing failed: $out/fuzz.log"; exit 1; }
tail -n 8 "$out/fuzz.log"
