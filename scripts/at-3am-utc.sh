#!/usr/bin/env bash
# Runs a program with the wall clock set to 03:00 UTC today, moving on from there (libfaketime).
# CI uses it as cargo's test runner for a second run of the suite: a test that depends on the time
# of day (dates from two clock readings, "30 hours ago" two calendar days back) fails here.
# Monotonic clocks stay real, so timers and timeouts behave as usual.
set -euo pipefail
export TZ=UTC FAKETIME_DONT_FAKE_MONOTONIC=1
exec faketime "${TRIALOPS_FAKE_UTC:-$(date -u +%F) 03:00:00}" "$@"
