#!/usr/bin/env bash
# arm_run.sh - run the ARM python of a root built by scripts/arm_env.sh (aarch64) or scripts/armv7_env.sh (armv7l).
#
# Usage: scripts/arm_run.sh [--proc] [--cpu-sysfs] [-e VAR=VAL]... ROOT SET -- python-args...
#   ROOT  the path printed by scripts/arm_env.sh (last line of its stdout)
#   SET   litert | tflite-runtime | armv7l (an /opt/env-SET built in ROOT), or 'none'
#   --proc  mount a proc filesystem on ROOT/proc for this run only (in a private mount
#           namespace, so nothing is left behind; falls back to mount + trap umount).
#           Not needed by numpy / ai-edge-litert / onnxruntime / tflite-runtime.
#   --cpu-sysfs  --proc, and a tmpfs on ROOT/sys holding only devices/system/cpu/{possible,present} (the host's
#           CPUs), for this run only: cpuinfo needs them and /proc/cpuinfo, or ExecuTorch's XNNPACK refuses to start.
#   -e VAR=VAL  extra environment variable inside the chroot (repeatable)
#
# Equivalent to: PYTHONPATH=/opt/env-SET chroot ROOT /usr/bin/python3.11 python-args...
# with a clean environment (env -i). The chroot's cwd is '/', so pass absolute paths as
# seen inside it: copy scripts/models/inputs under ROOT/work yourself and use /work/...
# /sys is deliberately absent: LiteRT and ONNX Runtime crash in CPU detection with the
# host's /sys (they print harmless "Error in cpuinfo" lines without it).
# Exit: the command's status; 2 usage / bad ROOT or SET; 3 cannot emulate the root's arch here.
set -euo pipefail

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
CHROOT=$(PATH="$PATH:/usr/sbin:/sbin" command -v chroot) || { echo "arm_run.sh: chroot(8) not found" >&2; exit 3; }

mount_cpu_sysfs() {  # ROOT: a tmpfs on ROOT/sys with the CPU lists cpuinfo reads
  local cpu="$1/sys/devices/system/cpu" n
  n=$(grep -c '^processor' /proc/cpuinfo)
  mount -t tmpfs -o size=64k,mode=755 fnx-cpu-sysfs "$1/sys" || return 1
  mkdir -p "$cpu" && echo "0-$((n - 1))" > "$cpu/possible" && echo "0-$((n - 1))" > "$cpu/present"
}

# internal re-entry: we are inside a private mount namespace made by unshare below
if [ "${1:-}" = "--__in-ns" ]; then
  shift; root="$1"; sysfs="$2"; shift 2
  mount -t proc proc "$root/proc"
  if [ "$sysfs" = 1 ]; then mount_cpu_sysfs "$root"; fi
  exec "$@"
fi

PROC=0; SYSFS=0; EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --proc) PROC=1; shift ;;
    --cpu-sysfs) PROC=1; SYSFS=1; shift ;;
    -e) [ $# -ge 2 ] || usage; case "$2" in *=*) EXTRA+=("$2") ;; *) usage ;; esac; shift 2 ;;
    -h|--help) usage ;;
    *) break ;;
  esac
done
[ $# -ge 3 ] && [ "$3" = "--" ] || usage
ROOT="$1"; SET="$2"; shift 3

[ -f "$ROOT/.fnx-ready" ] && [ -e "$ROOT/usr/bin/python3.11" ] \
  || { echo "arm_run.sh: $ROOT is not a ready arm_env.sh root" >&2; exit 2; }
ROOT=$(cd "$ROOT" && pwd -P)
ENVV=(PATH=/usr/bin:/bin HOME=/root LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1)
if [ "$SET" != none ]; then
  [ -f "$ROOT/opt/env-$SET/.fnx-key" ] \
    || { echo "arm_run.sh: set '$SET' is not built in $ROOT (run scripts/arm_env.sh --set $SET)" >&2; exit 2; }
  ENVV+=(PYTHONPATH=/opt/env-$SET)
fi
BINFMT=$(cat "$ROOT/.fnx-binfmt" 2>/dev/null || echo qemu-aarch64)  # armv7_env.sh roots: qemu-arm
E=/proc/sys/fs/binfmt_misc/$BINFMT
if ! { [ -r $E ] && grep -qx enabled $E && grep -q '^flags:.*F' $E; }; then
  echo "arm_run.sh: ERROR: $BINFMT binfmt (flag F) is not registered; run scripts/arm_env.sh" >&2
  exit 3
fi
[ "$(id -u)" = 0 ] || { echo "arm_run.sh: ERROR: chroot needs root" >&2; exit 3; }

RUN=(env -i "${ENVV[@]}" "${EXTRA[@]}" "$CHROOT" "$ROOT" /usr/bin/python3.11 "$@")
if [ $PROC = 0 ]; then
  exec "${RUN[@]}"
fi
mkdir -p "$ROOT/proc"
[ $SYSFS = 0 ] || mkdir -p "$ROOT/sys"  # empty outside this run: the other engines see no /sys, as before
# preferred: a private mount namespace; the mounts die with the process, no cleanup
if unshare -m --propagation private true 2>/dev/null; then
  exec unshare -m --propagation private "$BASH" "$0" --__in-ns "$ROOT" "$SYSFS" "${RUN[@]}"
fi
# fallback: mount in the host namespace and always unmount (even on error / Ctrl-C)
cleanup() {
  local m; for m in "$ROOT/sys" "$ROOT/proc"; do
    grep -q " $m " /proc/mounts && { umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; }
  done
}
trap cleanup EXIT
mount -t proc proc "$ROOT/proc"
[ $SYSFS = 0 ] || mount_cpu_sysfs "$ROOT"
# run the child in the background so a signal to us is forwarded before we unmount
"${RUN[@]}" & child=$!
trap 'kill -TERM $child 2>/dev/null; wait $child 2>/dev/null; exit 143' INT TERM HUP
rc=0; wait $child || rc=$?
exit $rc
