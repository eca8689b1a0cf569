#!/usr/bin/env bash
# `make test`: the emulated ARM parity run and pytest side by side, then ARM's table, then pytest's closing line.
#
# ARM parity (scripts/arm_parity.py) is single-threaded work (exports, then qemu processes), and pytest runs in
# pytest-xdist workers (Makefile's TEST_WORKERS) that still leave moments idle (subprocesses, installs, waits), so
# together they take minutes less than one after the other. pytest is the longer of the two, so it has the cores
# first: ARM runs its emulated processes (two at once, one torch thread each) at the lowest priority (nice 19), in
# what pytest leaves idle and on both cores once pytest is done, and pytest's workers keep their share of torch's
# threads with OpenMP's idle threads sleeping instead of spinning (OMP_WAIT_POLICY=PASSIVE: torch's, and
# ncnn's bundled OpenMP, whose spinning threads stalled multi-threaded ncnn runs 40-150x under load, as the ncnn
# engine itself does when the variable is unset; stop 32 held pytest to one torch thread
# while ARM ran instead, FNX_SHARE_CPU_WITH in tests/conftest.py; stop 33 measured both, docs/ARCHITECTURE.md,
# "Tests"). Both must pass. ARM's output is printed after pytest's,
# then pytest's summary again, so it stays the run's closing line.
# Usage: scripts/run_tests.sh PYTHON [pytest args...]
set -uo pipefail
py=${1:?usage: run_tests.sh PYTHON [pytest args...]}
shift
arm_log=$(mktemp /tmp/fnx-arm-parity.XXXXXX.log)
pytest_log=$(mktemp /tmp/fnx-pytest.XXXXXX.log)

OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE nice -n 19 "$py" scripts/arm_parity.py --jobs 2 >"$arm_log" 2>&1 &
arm_pid=$!
trap 'kill "$arm_pid" 2>/dev/null; rm -f "$pytest_log"' EXIT
echo "ARM parity running beside pytest (log: $arm_log)"

OMP_WAIT_POLICY=PASSIVE "$py" -m pytest "$@" 2>&1 | tee "$pytest_log"
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
