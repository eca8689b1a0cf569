#!/usr/bin/env bash
# arm_env.sh - build (once, cached) an emulated aarch64 CPython 3.11 chroot with
# the fnx engine sets, for ARM parity checks on an x86_64 Debian host.
#
# Usage: scripts/arm_env.sh [--set litert|tflite-runtime|all]... [--cache DIR] [--rebuild]
#   --set     engine set(s) to provide; repeatable or comma-separated (default: all)
#               litert         = "numpy>=2,<2.3" ai-edge-litert==2.3.0 onnxruntime==1.32.0 pillow
#               tflite-runtime = "numpy<2" tflite-runtime==2.14.0 pillow
#   --cache   cache dir (default: ${FNX_ARM_CACHE:-$HOME/.cache/fnx/arm})
#   --rebuild discard the cached root for the current key and build it again
#
# The LAST line of stdout is the absolute path of a ready chroot root; everything else
# goes to stderr, so `ROOT=$(scripts/arm_env.sh | tail -n1)` works.
# Run code in it with scripts/arm_run.sh ROOT SET -- python-args..., which is
#   PYTHONPATH=/opt/env-SET chroot ROOT /usr/bin/python3.11 python-args...
# (plus a clean environment; see arm_run.sh). Copy inputs under ROOT/work yourself.
#
# Exit codes: 0 ok, 2 usage, 3 qemu/binfmt unavailable (callers decide whether to
# fail or skip), 1 any other failure.
# Env: FNX_ARM_CACHE (cache dir), FNX_ARM_NO_INSTALL=1 (never apt-get install host
# packages; exit 3 if missing), FNX_HOST_PYTHON (host python with pip; default python3).
# Emulated timings mean nothing about real ARM hardware: never quote them as speed.
set -euo pipefail

BUILD_REV=1   # bump to invalidate every cached root
DEB_PKGS="libc6 libgcc-s1 libstdc++6 zlib1g libexpat1 libffi8 libssl3 libbz2-1.0 liblzma5
libsqlite3-0 libuuid1 libncursesw6 libtinfo6 libreadline8 libcrypt1 libpython3.11-minimal
libpython3.11-stdlib python3.11-minimal python3.11 media-types"
PY_VER=3.11
PLATFORMS="manylinux_2_34_aarch64 manylinux_2_28_aarch64 manylinux_2_27_aarch64 manylinux_2_17_aarch64 manylinux2014_aarch64"
ALL_SETS="litert tflite-runtime"

set_spec() {   # one requirement per line
  case "$1" in
    litert)         printf '%s\n' 'numpy>=2,<2.3' 'ai-edge-litert==2.3.0' 'onnxruntime==1.32.0' 'pillow' ;;
    tflite-runtime) printf '%s\n' 'numpy<2' 'tflite-runtime==2.14.0' 'pillow' ;;
    *) return 1 ;;
  esac
}

log() { printf '[arm_env] %s\n' "$*" >&2; }
die() { printf '[arm_env] ERROR: %s\n' "$*" >&2; exit 1; }
die_binfmt() {
  {
    echo "#####################################################################"
    echo "[arm_env] ERROR: cannot run aarch64 binaries on this host: $*"
    echo "[arm_env] needs root, qemu-user-static, binfmt-support and a writable"
    echo "[arm_env] /proc/sys/fs/binfmt_misc (qemu-aarch64 registered with flag F)."
    echo "#####################################################################"
  } >&2
  exit 3
}

# ---------------------------------------------------------------- arguments
SETS=""
CACHE="${FNX_ARM_CACHE:-$HOME/.cache/fnx/arm}"
REBUILD=0
while [ $# -gt 0 ]; do
  case "$1" in
    --set) [ $# -ge 2 ] || { echo "usage: --set needs a value" >&2; exit 2; }; SETS="$SETS ${2//,/ }"; shift 2 ;;
    --set=*) v="${1#--set=}"; SETS="$SETS ${v//,/ }"; shift ;;
    --cache) [ $# -ge 2 ] || { echo "usage: --cache needs a value" >&2; exit 2; }; CACHE="$2"; shift 2 ;;
    --cache=*) CACHE="${1#--cache=}"; shift ;;
    --rebuild) REBUILD=1; shift ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
    *) echo "arm_env.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "${SETS// /}" ] || SETS="all"
REQ_SETS=""
for s in $SETS; do
  if [ "$s" = all ]; then REQ_SETS="$REQ_SETS $ALL_SETS"
  elif set_spec "$s" >/dev/null; then REQ_SETS="$REQ_SETS $s"
  else echo "arm_env.sh: unknown set '$s' (litert|tflite-runtime|all)" >&2; exit 2; fi
done
REQ_SETS=$(printf '%s\n' $REQ_SETS | awk '!seen[$0]++' | tr '\n' ' ')
mkdir -p "$CACHE" || die "cannot create cache dir $CACHE"
CACHE=$(cd "$CACHE" && pwd -P)

# ---------------------------------------------------------------- host: qemu + binfmt
BINFMT=/proc/sys/fs/binfmt_misc
ENTRY=$BINFMT/qemu-aarch64
QEMU=/usr/bin/qemu-aarch64-static
APT_UPDATED=0

binfmt_ok() {  # registered, enabled, fix-binary (F) flag, interpreter present
  [ -r "$ENTRY" ] && grep -qx enabled "$ENTRY" && grep -q '^flags:.*F' "$ENTRY" \
    && [ -x "$(sed -n 's/^interpreter //p' "$ENTRY")" ]
}

host_apt_install() {  # returns 1 (with a message) when it cannot install
  if [ "${FNX_ARM_NO_INSTALL:-0}" = 1 ]; then log "missing host packages ($*) and FNX_ARM_NO_INSTALL=1"; return 1; fi
  if [ "$(id -u)" != 0 ]; then log "missing host packages ($*) and not root"; return 1; fi
  if [ $APT_UPDATED = 0 ]; then
    log "apt-get update (host)"
    apt-get update -qq >&2 || log "warning: apt-get update reported errors"
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 \
    || { log "apt-get install $* failed"; return 1; }
}

ensure_binfmt() {
  binfmt_ok && return 0
  local need=""
  [ -x "$QEMU" ] || need="$need qemu-user-static"
  command -v update-binfmts >/dev/null 2>&1 || need="$need binfmt-support"
  # mount binfmt_misc first so the packages' postinst can register their formats
  if [ ! -e $BINFMT/status ]; then
    mount -t binfmt_misc binfmt_misc $BINFMT 2>/dev/null \
      || die_binfmt "cannot mount binfmt_misc on $BINFMT"
  fi
  [ -z "$need" ] || host_apt_install $need || die_binfmt "could not install$need"
  binfmt_ok && return 0
  if [ -e "$ENTRY" ] && ! grep -q '^flags:.*F' "$ENTRY"; then
    log "qemu-aarch64 is registered without the F flag; re-registering"
    echo -1 > "$ENTRY" 2>/dev/null || true
  fi
  update-binfmts --import qemu-aarch64 >/dev/null 2>&1 || true
  update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
  if ! binfmt_ok && [ ! -e "$ENTRY" ] && [ -w $BINFMT/register ]; then
    log "update-binfmts did not register qemu-aarch64; writing the entry directly"
    printf '%s' ':qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:'"$QEMU"':F' \
      > $BINFMT/register 2>/dev/null || true
  fi
  [ -e "$ENTRY" ] && ! grep -qx enabled "$ENTRY" && { echo 1 > "$ENTRY"; } 2>/dev/null || true
  binfmt_ok || die_binfmt "qemu-aarch64 binfmt entry missing, disabled or without F flag ($(tr '\n' ' ' < "$ENTRY" 2>/dev/null))"
}

ensure_binfmt

# ---------------------------------------------------------------- cache keys
HOST_PY="${FNX_HOST_PYTHON:-python3}"
CHROOT=$(PATH="$PATH:/usr/sbin:/sbin" command -v chroot) || die "chroot(8) not found"
sources_digest() {  # the apt sources decide which .deb versions we get
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | grep -v '^[[:space:]]*#' | sha256sum | cut -c1-16
}
BASE_KEY=$(printf 'rev=%s\ndebs=%s\npy=%s\nsources=%s\n' "$BUILD_REV" "$(echo $DEB_PKGS)" "$PY_VER" "$(sources_digest)" \
  | sha256sum | cut -c1-12)
set_key() {
  printf 'rev=%s\npy=%s\nplat=%s\nspec=%s\n' "$BUILD_REV" "$PY_VER" "$PLATFORMS" "$(set_spec "$1" | tr '\n' ' ')" \
    | sha256sum | cut -c1-12
}
ROOT="$CACHE/py311-arm64-$BASE_KEY"

root_ready() { [ -f "$ROOT/.fnx-ready" ] && [ -e "$ROOT/usr/bin/python3.11" ]; }
set_ready()  { [ "$(cat "$ROOT/opt/env-$1/.fnx-key" 2>/dev/null)" = "$(set_key "$1")" ]; }
all_ready() {
  root_ready || return 1
  local s; for s in $REQ_SETS; do set_ready "$s" || return 1; done
}

print_result() {
  local s
  for s in $REQ_SETS; do
    log "run ($s): PYTHONPATH=/opt/env-$s chroot $ROOT /usr/bin/python3.11 ARGS...   (or: $(cd "$(dirname "$0")" && pwd)/arm_run.sh $ROOT $s -- ARGS...)"
  done
  echo "$ROOT"
}

# ---------------------------------------------------------------- fast path: no lock, no network
if [ $REBUILD = 0 ] && all_ready; then
  print_result
  exit 0
fi

# ---------------------------------------------------------------- slow path, serialized
exec 9>"$CACHE/.lock"
flock -w 1800 9 || die "timed out waiting for the build lock $CACHE/.lock"
# stale temp dirs from interrupted builds (we hold the lock, so nobody else is building)
rm -rf --one-file-system "$CACHE"/.tmp-* "$ROOT"/opt/.tmp-* "$ROOT"/opt/.old-* 2>/dev/null || true

TMPS=()
cleanup() { local d; for d in "${TMPS[@]}"; do rm -rf --one-file-system "$d"; done; }
trap cleanup EXIT
trap 'exit 130' INT; trap 'exit 143' TERM HUP

build_root() {
  local tmp="$CACHE/.tmp-root-$$" apt="$CACHE/apt" deb
  TMPS+=("$tmp")
  mkdir -p "$tmp/root" "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/debs"
  local A=(-o APT::Architecture=arm64 -o APT::Architectures::=arm64
           -o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache"
           -o Dir::State::status=/dev/null -o Debug::NoLocking=1 -q)
  log "apt-get update (private arm64 state in $apt)"
  apt-get "${A[@]}" update >&2 || log "warning: arm64 apt-get update reported errors"
  log "downloading arm64 .debs"
  # the _apt sandbox user cannot write into the cache; we are root anyway
  (cd "$apt/debs" && apt-get "${A[@]}" -o APT::Sandbox::User=root download $DEB_PKGS >&2) \
    || die "apt-get download of arm64 packages failed"
  # exact files apt chose (one line per package: 'URI' FILENAME SIZE HASH)
  local files; files=$(apt-get "${A[@]}" --print-uris download $DEB_PKGS | awk '{print $2}') \
    || die "apt-get --print-uris download failed"
  [ "$(echo "$files" | wc -w)" = "$(echo $DEB_PKGS | wc -w)" ] || die "apt did not find every arm64 package: $files"
  : > "$tmp/root/.fnx-debs"
  local f
  for f in $files; do
    dpkg-deb -x "$apt/debs/$f" "$tmp/root" || die "dpkg-deb -x $f failed"
    echo "$f" >> "$tmp/root/.fnx-debs"
  done
  local r="$tmp/root"
  mkdir -p "$r/proc" "$r/dev" "$r/tmp" "$r/work" "$r/opt" "$r/etc" "$r/root"
  chmod 1777 "$r/tmp" "$r/work"
  # minimal device nodes (no /dev or /sys mounts needed); optional if mknod is refused
  mknod -m 666 "$r/dev/null" c 1 3 2>/dev/null || true
  mknod -m 666 "$r/dev/zero" c 1 5 2>/dev/null || true
  mknod -m 666 "$r/dev/random" c 1 8 2>/dev/null || true
  mknod -m 666 "$r/dev/urandom" c 1 9 2>/dev/null || true
  [ -e "$r/etc/passwd" ] || printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n' > "$r/etc/passwd"
  [ -e "$r/etc/group" ]  || printf 'root:x:0:\nnogroup:x:65534:\n' > "$r/etc/group"
  log "smoke test: aarch64 python in the chroot"
  local m; m=$(env -i PATH=/usr/bin:/bin LANG=C.UTF-8 "$CHROOT" "$r" /usr/bin/python3.11 -c \
    'import platform, ssl, sqlite3, ctypes, lzma, bz2, decimal; print(platform.machine())') \
    || die "aarch64 python does not start in the chroot"
  [ "$m" = aarch64 ] || die "chroot python reports machine '$m', expected aarch64"
  echo "$BASE_KEY" > "$r/.fnx-ready"
  # only reached for --rebuild or a half-broken root; never delete through a live mount
  if [ -e "$ROOT" ]; then
    grep -q " $ROOT/" /proc/mounts && die "$ROOT is in use (something is mounted inside it)"
    rm -rf --one-file-system "$ROOT"
  fi
  mv "$r" "$ROOT"
  rm -rf "$tmp"
  log "root ready: $ROOT"
}

build_set() {
  local s="$1" tmp="$ROOT/opt/.tmp-env-$1-$$" dst="$ROOT/opt/env-$1" p
  TMPS+=("$tmp")
  local plat=(); for p in $PLATFORMS; do plat+=(--platform "$p"); done
  local reqs=(); while IFS= read -r p; do reqs+=("$p"); done < <(set_spec "$s")
  local compile=--no-compile
  [ "$("$HOST_PY" -c 'import sys;print("%d.%d"%sys.version_info[:2])' 2>/dev/null)" = "$PY_VER" ] && compile=--compile
  log "resolving aarch64 wheels for set '$s' with the host pip: ${reqs[*]}"
  rm -rf "$tmp"
  "$HOST_PY" -m pip --version >/dev/null 2>&1 || host_apt_install python3-pip \
    || die "host python '$HOST_PY' has no pip (set FNX_HOST_PYTHON)"
  local extra=() help; help=$("$HOST_PY" -m pip install --help 2>/dev/null || true)
  case "$help" in *--break-system-packages*) extra+=(--break-system-packages) ;; esac
  case "$help" in *--root-user-action*) extra+=(--root-user-action=ignore) ;; esac
  # the local find-links/index config of some hosts makes pip warn once per package: hide that
  if ! "$HOST_PY" -m pip install -q --disable-pip-version-check --no-warn-script-location "${extra[@]}" \
      --only-binary=:all: --python-version "$PY_VER" --implementation cp --abi cp311 "${plat[@]}" \
      --target "$tmp" $compile "${reqs[@]}" 2>&1 \
      | { grep -v 'is ignored: it is neither a file nor a directory' || true; } >&2; then
    die "host pip could not resolve aarch64 wheels for set '$s'"
  fi
  ls "$tmp"/*.dist-info -d 2>/dev/null | sed 's#.*/##; s/\.dist-info$//' | sort > "$tmp/.fnx-manifest"
  set_key "$s" > "$tmp/.fnx-key"
  if [ -e "$dst" ]; then mv "$dst" "$ROOT/opt/.old-env-$s-$$"; fi
  mv "$tmp" "$dst"
  rm -rf "$ROOT/opt/.old-env-$s-$$"
  log "set '$s' ready: $(tr '\n' ' ' < "$dst/.fnx-manifest")"
}

t0=$(date +%s)
if [ $REBUILD = 1 ] || ! root_ready; then build_root; fi
for s in $REQ_SETS; do
  if [ $REBUILD = 1 ] || ! set_ready "$s"; then build_set "$s"; fi
done
cat > "$ROOT/opt/RUN.txt" <<EOF
Emulated aarch64 CPython $PY_VER chroot built by fnx scripts/arm_env.sh (key $BASE_KEY).
Run (as root, qemu-aarch64 binfmt with flag F registered):
  PYTHONPATH=/opt/env-<set> chroot $ROOT /usr/bin/python3.11 /work/script.py ...
or scripts/arm_run.sh $ROOT <set> -- /work/script.py ...
Sets: $(cd "$ROOT/opt" && ls -d env-* 2>/dev/null | sed 's/^env-//' | tr '\n' ' ')
Debian packages: see /.fnx-debs; wheels: see /opt/env-<set>/.fnx-manifest
EOF
log "build finished in $(( $(date +%s) - t0 )) s"
print_result
