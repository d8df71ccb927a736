#!/usr/bin/env bash
# Configures and builds convoy. BUILD_TYPE=Sanitize builds with ASan+UBSan into build-sanitize/.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo}
if [ "$BUILD_TYPE" = Sanitize ]; then CONVOY_BUILD_DIR=${CONVOY_BUILD_DIR%/}-sanitize; fi
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/convoy-ccache}
jobs=$(nproc)
cmake -S "$CONVOY_ROOT" -B "$CONVOY_BUILD_DIR" -DCMAKE_BUILD_TYPE="$BUILD_TYPE" >/dev/null
cmake --build "$CONVOY_BUILD_DIR" -j "$((jobs + 1))"
echo "$CONVOY_BUILD_DIR"
