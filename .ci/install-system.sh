#!/usr/bin/env bash
# Debian packages the test suites need: Chromium (playground e2e, IndexedDB/Web Locks tabs) and
# redis-server (fleet scenario, BFF example).
set -euo pipefail
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v redis-server >/dev/null || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
