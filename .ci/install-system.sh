#!/usr/bin/env bash
# Debian packages the test suites need (none yet for the core suites).
set -euo pipefail
