#!/usr/bin/env bash
# armv7_env.sh - build (once, cached) an emulated 32-bit Raspberry Pi OS-like userland: Debian bookworm armhf
# CPython 3.11 with numpy and Pillow from Debian's own packages (as a Pi user gets them with apt), and
# tflite-runtime 2.14 (the only engine with an armv7l wheel: manylinux_2_34_armv7l) in /opt/env-armv7l.
#
# Usage: scripts/armv7_env.sh [--cache DIR] [--rebuild]
# The LAST line of stdout is the root; run code with scripts/arm_run.sh ROOT armv7l -- python-args...
# Exit codes: 0 ok, 2 usage, 3 qemu-arm binfmt unavailable, 1 any other failure.
# Needs what scripts/arm_env.sh sets up (root, qemu-user-static, binfmt_misc); run that first.
# Emulated timings mean nothing about a Raspberry Pi: never quote them as speed.
set -euo pipefail

BUILD_REV=1
TFLITE=tflite-runtime==2.14.0
PLATFORM=manylinux_2_34_armv7l
# CPython 3.11, then numpy (reference BLAS/LAPACK) and Pillow with the libraries their extensions link
DEB_PKGS="libc6 libgcc-s1 libstdc++6 zlib1g libexpat1 libffi8 libssl3 libbz2-1.0 liblzma5 libsqlite3-0 libuuid1
libncursesw6 libtinfo6 libreadline8 libcrypt1 libpython3.11-minimal libpython3.11-stdlib python3.11-minimal python3.11
media-types python3-numpy libblas3 liblapack3 libgfortran5 python3-pil libjpeg62-turbo libopenjp2-7 libtiff6
libdeflate0 libjbig0 liblerc4 libzstd1 libwebp7 libxcb1 libxau6 libxdmcp6 libbsd0 libmd0 libimagequant0 libgomp1"

log() { printf '[armv7_env] %s\n' "$*" >&2; }
die() { printf '[armv7_env] ERROR: %s\n' "$*" >&2; exit 1; }

CACHE="${FNX_ARM_CACHE:-$HOME/.cache/fnx/arm}"; REBUILD=0
while [ $# -gt 0 ]; do
  case "$1" in
    --cache) CACHE="$2"; shift 2 ;;
    --rebuild) REBUILD=1; shift ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
    *) echo "armv7_env.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
mkdir -p "$CACHE"; CACHE=$(cd "$CACHE" && pwd -P)

ENTRY=/proc/sys/fs/binfmt_misc/qemu-arm
binfmt_ok() { [ -r $ENTRY ] && grep -qx enabled $ENTRY && grep -q '^flags:.*F' $ENTRY; }
if ! binfmt_ok; then
  update-binfmts --enable qemu-arm >/dev/null 2>&1 || true
  binfmt_ok || { log "ERROR: qemu-arm binfmt (flag F) is not registered; install qemu-user-static and binfmt-support"; exit 3; }
fi

HOST_PY="${FNX_HOST_PYTHON:-python3}"
CHROOT=$(PATH="$PATH:/usr/sbin:/sbin" command -v chroot) || die "chroot(8) not found"
SOURCES=$( { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } \
  | grep -v '^[[:space:]]*#' | sha256sum | cut -c1-16)
KEY=$(printf 'rev=%s\ndebs=%s\ntflite=%s %s\nsources=%s\n' "$BUILD_REV" "$(echo $DEB_PKGS)" "$TFLITE" "$PLATFORM" "$SOURCES" \
  | sha256sum | cut -c1-12)
ROOT="$CACHE/py311-armhf-$KEY"
if [ $REBUILD = 0 ] && [ "$(cat "$ROOT/.fnx-ready" 2>/dev/null)" = "$KEY" ]; then echo "$ROOT"; exit 0; fi

exec 9>"$CACHE/.lock-armhf"
flock -w 1800 9 || die "timed out waiting for the build lock"
if [ $REBUILD = 0 ] && [ "$(cat "$ROOT/.fnx-ready" 2>/dev/null)" = "$KEY" ]; then echo "$ROOT"; exit 0; fi
TMP="$CACHE/.tmp-armhf-$$"; APT="$CACHE/apt-armhf"
trap 'rm -rf --one-file-system "$TMP"' EXIT
trap 'exit 130' INT; trap 'exit 143' TERM HUP
mkdir -p "$TMP/root" "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/debs"
A=(-o APT::Architecture=armhf -o APT::Architectures::=armhf -o Dir::State::Lists="$APT/lists" -o Dir::Cache="$APT/cache"
   -o Dir::State::status=/dev/null -o Debug::NoLocking=1 -q)
log "apt-get update (private armhf state in $APT)"
apt-get "${A[@]}" update >&2 || log "warning: armhf apt-get update reported errors (a mirror index mid-sync is harmless)"
(cd "$APT/debs" && apt-get "${A[@]}" -o APT::Sandbox::User=root download $DEB_PKGS >&2) || die "apt-get download (armhf) failed"
FILES=$(apt-get "${A[@]}" --print-uris download $DEB_PKGS | awk '{print $2}') || die "apt-get --print-uris failed"
[ "$(echo "$FILES" | wc -w)" = "$(echo $DEB_PKGS | wc -w)" ] || die "apt did not find every armhf package"
R="$TMP/root"
for f in $FILES; do dpkg-deb -x "$APT/debs/$f" "$R" || die "dpkg-deb -x $f failed"; echo "$f" >> "$R/.fnx-debs"; done
# what update-alternatives would do in the packages' postinst (dpkg-deb -x runs no scripts)
ln -s blas/libblas.so.3 "$R/usr/lib/arm-linux-gnueabihf/libblas.so.3"
ln -s lapack/liblapack.so.3 "$R/usr/lib/arm-linux-gnueabihf/liblapack.so.3"
mkdir -p "$R/proc" "$R/dev" "$R/tmp" "$R/work" "$R/opt" "$R/root"; chmod 1777 "$R/tmp" "$R/work"
for n in "null 1 3" "zero 1 5" "random 1 8" "urandom 1 9"; do set -- $n; mknod -m 666 "$R/dev/$1" c "$2" "$3" 2>/dev/null || true; done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$R/etc/passwd"; printf 'root:x:0:\n' > "$R/etc/group"
# Debian ships no .pyc files: compile them once with the host's 3.11, or every emulated start pays ~6 s
if [ "$("$HOST_PY" -c 'import sys;print("%d.%d"%sys.version_info[:2])' 2>/dev/null)" = 3.11 ]; then
  "$HOST_PY" -m compileall -q -j 0 "$R/usr/lib/python3.11" "$R/usr/lib/python3/dist-packages" >/dev/null 2>&1 || true
fi
log "tflite-runtime for armv7l ($PLATFORM), numpy left to Debian"
EXTRA=(); case "$("$HOST_PY" -m pip install --help 2>/dev/null)" in *--root-user-action*) EXTRA+=(--root-user-action=ignore) ;; esac
"$HOST_PY" -m pip install -q --disable-pip-version-check "${EXTRA[@]}" --no-deps --only-binary=:all: --python-version 3.11 \
  --implementation cp --abi cp311 --platform $PLATFORM --target "$R/opt/env-armv7l" $TFLITE 2>&1 \
  | { grep -v 'is ignored: it is neither a file nor a directory' || true; } >&2
[ -d "$R/opt/env-armv7l/tflite_runtime" ] || die "pip did not install $TFLITE for $PLATFORM"
echo "$KEY" > "$R/opt/env-armv7l/.fnx-key"
echo qemu-arm > "$R/.fnx-binfmt"
M=$(env -i PATH=/usr/bin:/bin LANG=C.UTF-8 PYTHONPATH=/opt/env-armv7l "$CHROOT" "$R" /usr/bin/python3.11 -c \
  'import platform, numpy, PIL.Image, tflite_runtime.interpreter; print(platform.machine())') || die "smoke test failed in the armhf chroot"
[ "$M" = armv7l ] || die "chroot python reports machine '$M', expected armv7l"
echo "$KEY" > "$R/.fnx-ready"
rm -rf --one-file-system "$ROOT"; mv "$R" "$ROOT"
log "root ready: $ROOT ($(du -sh "$ROOT" | cut -f1))"
echo "$ROOT"
