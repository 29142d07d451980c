#!/usr/bin/env bash
# Debian packages the test suites need: Chromium (playground e2e, IndexedDB/Web Locks tabs).
set -euo pipefail
need=()
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
