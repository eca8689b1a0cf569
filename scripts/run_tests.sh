#!/usr/bin/env bash
# `make test`: the emulated ARM parity run and pytest side by side, then ARM's table, then pytest's closing line.
#
# ARM parity (scripts/arm_parity.py) is mostly emulated, single-threaded work and pytest leaves about a third of a
# 2-core machine idle (conversions, subprocesses, installs), so running them together saves minutes. Both must
# pass. ARM's output is kept in a file and printed after pytest, so pytest's summary stays the last line.
# Usage: scripts/run_tests.sh PYTHON [pytest args...]
set -uo pipefail
py=${1:?usage: run_tests.sh PYTHON [pytest args...]}
shift
arm_log=$(mktemp /tmp/fnx-arm-parity.XXXXXX.log)
pytest_log=$(mktemp /tmp/fnx-pytest.XXXXXX.log)
trap 'rm -f "$pytest_log"' EXIT

"$py" scripts/arm_parity.py >"$arm_log" 2>&1 &
arm_pid=$!
trap 'kill "$arm_pid" 2>/dev/null; rm -f "$pytest_log"' EXIT
echo "ARM parity running beside pytest (log: $arm_log)"

"$py" -m pytest "$@" 2>&1 | tee "$pytest_log"
pytest_rc=${PIPESTATUS[0]}

wait "$arm_pid"
arm_rc=$?
trap 'rm -f "$pytest_log"' EXIT
echo
cat "$arm_log"
[ "$arm_rc" -ne 0 ] && echo "ARM parity failed (exit $arm_rc; log: $arm_log)"
echo
tail -n 1 "$pytest_log"  # pytest's summary, the run's closing line
[ "$pytest_rc" -ne 0 ] && exit "$pytest_rc"
exit "$arm_rc"
