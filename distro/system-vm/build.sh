#!/usr/bin/env bash
# The System VM image: a small kernel from Debian's linux-source-6.12 with kernel.config merged over
# tinyconfig, and an initramfs of Debian's static busybox with the control agent as /init and
# nxia-call and nxia-serve (host calls from a shell and programs served to the host, through the
# agent's Gemini broker) and nxia-portal (Portal regions mapped in place) in /usr/bin.
#
#   build.sh build   build the image for the current inputs (seconds when cached)
#   build.sh info    what the image for the current inputs is (kernel, config hash, sizes, path)
#   build.sh path    print the image directory; fails if it is not built
#   build.sh check   fail unless the image is built and its kernel has every required.config option
#
# The inputs' hash is the cache key: ~/.cache/nxia/system-vm/<key>/ holds bzImage, initramfs.cpio.gz,
# config and info.json; ~/.cache/nxia/system-vm/current links to the last one built.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
KERNEL_PKG=linux-source-6.12
KERNEL_PKG_VERSION="${NXIA_SYSVM_KERNEL_VERSION:-6.12.117-1~deb12u1}"
BUSYBOX=/bin/busybox
AGENT="$ROOT/guest/agent"
CACHE="${NXIA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nxia}/system-vm"
JOBS="${NXIA_SYSVM_JOBS:-2}"
SRC="$CACHE/src/linux-${KERNEL_PKG_VERSION//\~/_}"   # kbuild dislikes '~' in paths
OBJ="$CACHE/obj"                                     # one object tree, reused: a config change rebuilds only what it touches

# shellcheck source=../apt-download.sh
. "$HERE/../apt-download.sh"

say() { echo "system-vm: $*" >&2; }
die() { echo "system-vm: $*" >&2; exit 1; }

# The cache key: everything that goes into the image.
inputs() {
  echo "kernel $KERNEL_PKG $KERNEL_PKG_VERSION"
  echo "gcc $(gcc -dumpfullversion 2>/dev/null || echo none)"
  sha256sum "$HERE/kernel.config" "$HERE/build.sh" "$HERE/init-placeholder" | awk '{print $1}'
  echo "patches $(patch_set)"
  if [ -f "$BUSYBOX" ]; then sha256sum < "$BUSYBOX"; else echo "no busybox"; fi
  if [ -d "$AGENT" ]; then
    (cd "$AGENT" && find . -type f -not -path './target/*' -not -path './build/*' -print0 | LC_ALL=C sort -z | xargs -0r sha256sum)
    (cd "$AGENT/../kit" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum)   # nxia-call's codec
  fi
}
key() { inputs | sha256sum | cut -c1-16; }

fetch_source() {
  local deb
  # the version comes from bookworm-security
  deb="$(apt_download "system-vm: [1/5]" "$KERNEL_PKG" "$KERNEL_PKG_VERSION" "$CACHE/dl" "apt-get update? bookworm-security in sources.list?")"
  if [ ! -f "$SRC/.nxia-unpacked" ]; then
    say "[1/5] unpacking $KERNEL_PKG $KERNEL_PKG_VERSION"
    rm -rf "$SRC" "$SRC.tmp" && mkdir -p "$SRC.tmp"
    dpkg-deb --fsys-tarfile "$deb" | tar -xO "./usr/src/$KERNEL_PKG.tar.xz" | tar -xJ -C "$SRC.tmp" --strip-components=1
    touch "$SRC.tmp/.nxia-unpacked" && mv "$SRC.tmp" "$SRC"
  else
    say "[1/5] source: $KERNEL_PKG $KERNEL_PKG_VERSION (cached)"
  fi
}

# The kernel patches (patches/*.patch, applied in name order with patch -p1): their hash.
patch_set() { cat "$HERE"/patches/*.patch 2>/dev/null | sha256sum | cut -c1-16; }

# Applies the patch set to the unpacked source once. The source remembers which set it carries
# and the files it changed; another set starts again from the pristine source, and the files
# either set touched get a new time, so the shared object tree rebuilds exactly them.
apply_patches() {
  local want have p files=""
  want="$(patch_set)"
  have="$(head -1 "$SRC/.nxia-patches" 2>/dev/null || echo none)"
  [ "$want" != "$have" ] || return 0
  if [ "$have" != none ]; then
    say "[1/5] the kernel patches changed: unpacking the source again"
    files="$(tail -n +2 "$SRC/.nxia-patches")"
    rm -f "$SRC/.nxia-unpacked"
    fetch_source
  fi
  for p in "$HERE"/patches/*.patch; do
    [ -f "$p" ] || continue
    say "[1/5] patch: $(basename "$p")"
    patch -p1 -d "$SRC" --forward -s < "$p" || die "$(basename "$p") does not apply to $KERNEL_PKG $KERNEL_PKG_VERSION"
    files+=$'\n'"$(sed -n 's|^+++ b/\([^[:space:]]*\).*|\1|p' "$p")"
  done
  (cd "$SRC" && for f in $files; do [ ! -f "$f" ] || touch "$f"; done)
  { echo "$want"; printf '%s\n' $files | sort -u; } > "$SRC/.nxia-patches"
}

kmake() { nice make -C "$SRC" O="$OBJ" ARCH=x86_64 "$@"; }

configure() {
  say "[2/5] kernel config: tinyconfig + kernel.config"
  mkdir -p "$OBJ"
  kmake -s tinyconfig >"$OBJ/config.log" 2>&1 \
    && "$SRC/scripts/kconfig/merge_config.sh" -m -O "$OBJ" "$OBJ/.config" "$HERE/kernel.config" >>"$OBJ/config.log" 2>&1 \
    && kmake -s olddefconfig >>"$OBJ/config.log" 2>&1 \
    || { tail -20 "$OBJ/config.log" >&2; die "kernel configuration failed ($OBJ/config.log)"; }
  # An option of the fragment that Kconfig overrode (a missing dependency) is a bug in the fragment.
  local line opt bad=0
  while IFS= read -r line; do
    case "$line" in
      CONFIG_*=n) opt="${line%%=*}"; ! grep -q "^$opt=" "$OBJ/.config" || { say "kernel.config: $opt=n did not hold"; bad=1; } ;;
      CONFIG_*=*) grep -qxF "$line" "$OBJ/.config" || { say "kernel.config: $line did not hold (a dependency is off)"; bad=1; } ;;
    esac
  done < "$HERE/kernel.config"
  [ "$bad" -eq 0 ] || die "kernel.config does not apply cleanly to $KERNEL_PKG_VERSION"
  "$HERE/check-config.sh" "$OBJ/.config" >/dev/null
}

# Runs make with its output condensed to one progress line; the whole log stays in $OBJ/build.log.
# The percentage is against the step count of the last full build (a first build guesses).
compile_kernel() {
  local total; total="$(cat "$OBJ/.nxia-steps" 2>/dev/null || echo 1800)"
  say "[3/5] kernel: make -j$JOBS bzImage (log: $OBJ/build.log)"
  local tty=0; [ -t 2 ] && tty=1
  set +o pipefail
  kmake -j"$JOBS" bzImage 2>&1 | tee "$OBJ/build.log" | awk -v total="$total" -v tty="$tty" -v obj="$OBJ" '
    /^  [A-Z0-9_]+ +[^ ]/ {
      n++; pct = int(n * 100 / total); if (pct > 99) pct = 99
      if (tty) { printf "\rsystem-vm:   %3d%%  %-60.60s", pct, $1 " " $2 > "/dev/stderr"; fflush("/dev/stderr") }
      else if (pct >= last + 10) { last = pct - pct % 10; printf "system-vm:   %d%% (%d steps)\n", last, n > "/dev/stderr"; fflush("/dev/stderr") }
    }
    END { if (tty) printf "\r%80s\r", "" > "/dev/stderr"; if (n > 300) print n > (obj "/.nxia-steps.last") }'
  local rc=${PIPESTATUS[0]}
  set -o pipefail
  if [ "$rc" -ne 0 ]; then
    grep -E 'error|Error' "$OBJ/build.log" | head -20 >&2 || true
    die "kernel build failed (status $rc); the whole log: $OBJ/build.log"
  fi
  # Only a build that compiled (nearly) everything says how many steps a full build has.
  if [ -f "$OBJ/.nxia-steps.last" ] && [ "$(cat "$OBJ/.nxia-steps.last")" -gt "$((total / 2))" ]; then
    mv "$OBJ/.nxia-steps.last" "$OBJ/.nxia-steps"
  fi
  rm -f "$OBJ/.nxia-steps.last"
}

static() { ! readelf -l "$1" 2>/dev/null | grep -q INTERP; }

# newc cpio written by the kernel's own gen_init_cpio: device nodes and owners without root.
make_initramfs() {  # make_initramfs OUT-DIR
  local out="$1" init call="" serve="" portal="" list gen="$OBJ/gen_init_cpio"
  [ -x "$BUSYBOX" ] && static "$BUSYBOX" || die "$BUSYBOX is not a static busybox (apt-get install busybox-static)"
  if [ -d "$AGENT" ]; then
    say "[4/5] initramfs: busybox + nxia-agent (make -C guest/agent)"
    make -C "$AGENT" >&2 || die "the agent did not build (make -C guest/agent)"
    init="$(find "$AGENT" -type f -name nxia-agent -perm -u+x -print -quit)"
    [ -n "$init" ] || die "make -C guest/agent made no nxia-agent"
    static "$init" || die "$init is not statically linked"
    call="$AGENT/target/nxia-call" serve="$AGENT/target/nxia-serve" portal="$AGENT/target/nxia-portal"
    for tool in "$call" "$serve" "$portal"; do
      [ -x "$tool" ] && static "$tool" || die "make -C guest/agent made no static $(basename "$tool")"
    done
  else
    say "[4/5] initramfs: busybox + placeholder /init (guest/agent does not exist yet)"
    init="$HERE/init-placeholder"
  fi
  [ -x "$gen" ] && [ "$gen" -nt "$SRC/usr/gen_init_cpio.c" ] || gcc -O2 -o "$gen" "$SRC/usr/gen_init_cpio.c"
  list="$out/initramfs.list"
  {
    for d in /dev /proc /sys /tmp /run /root /etc /bin /sbin /usr /usr/bin /usr/sbin; do echo "dir $d 0755 0 0"; done
    echo "nod /dev/console 0600 0 0 c 5 1"
    echo "nod /dev/null 0666 0 0 c 1 3"
    echo "file /bin/busybox $BUSYBOX 0755 0 0"
    "$BUSYBOX" --list-full | LC_ALL=C sort | while read -r applet; do
      [ "$applet" = bin/busybox ] || echo "slink /$applet /bin/busybox 0777 0 0"
    done
    echo "file /init $init 0755 0 0"
    [ -z "$call" ] || echo "file /usr/bin/nxia-call $call 0755 0 0"
    [ -z "$serve" ] || echo "file /usr/bin/nxia-serve $serve 0755 0 0"
    [ -z "$portal" ] || echo "file /usr/bin/nxia-portal $portal 0755 0 0"
  } > "$list"
  # A fixed timestamp keeps the archive the same for the same inputs.
  "$gen" -t 0 "$list" | gzip -9n > "$out/initramfs.cpio.gz"
}

cmd_build() {
  local k dir start=$SECONDS
  k="$(key)"; dir="$CACHE/$k"
  if [ -f "$dir/info.json" ]; then
    ln -sfn "$k" "$CACHE/current"
    say "up to date: $dir"
    echo "$dir"
    return
  fi
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock -n 9 || { say "another build holds $CACHE/.lock; waiting"; flock 9; }
  if [ -f "$dir/info.json" ]; then ln -sfn "$k" "$CACHE/current"; echo "$dir"; return; fi
  say "building image $k (cold: 20-40 min on 2 cores; cached afterwards)"
  "$ROOT/tools/need.sh" image || die "the kernel build's tools are missing (above)"
  for tool in gzip dpkg-deb apt-get; do
    command -v "$tool" >/dev/null || die "missing $tool: the image is built from Debian's kernel source package, on a Debian host"
  done
  fetch_source
  apply_patches
  configure
  compile_kernel
  local tmp="$CACHE/.tmp-$k"
  rm -rf "$tmp" && mkdir -p "$tmp"
  make_initramfs "$tmp"
  say "[5/5] storing $dir"
  cp "$OBJ/arch/x86/boot/bzImage" "$tmp/bzImage"
  cp "$OBJ/.config" "$tmp/config"
  local release; release="$(kmake -s kernelrelease 2>/dev/null)"
  cat > "$tmp/info.json" <<EOF
{
  "key": "$k",
  "kernel_package": "$KERNEL_PKG $KERNEL_PKG_VERSION",
  "kernel_release": "$release",
  "config_sha256": "$(sha256sum < "$tmp/config" | cut -d' ' -f1)",
  "bzimage_bytes": $(stat -c %s "$tmp/bzImage"),
  "initramfs_bytes": $(stat -c %s "$tmp/initramfs.cpio.gz"),
  "init": "$(if [ -d "$AGENT" ]; then echo nxia-agent; else echo placeholder; fi)",
  "cmdline": "console=ttyS0",
  "built": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "build_seconds": $((SECONDS - start))
}
EOF
  rm -rf "$dir" && mv "$tmp" "$dir"
  ln -sfn "$k" "$CACHE/current"
  say "built in $((SECONDS - start)) s: $dir"
  echo "$dir"
}

built_dir() {  # the image directory for the current inputs, or fail
  local dir; dir="$CACHE/$(key)"
  [ -f "$dir/info.json" ] || die "no System VM image for the current inputs (key $(key)); build it: ./nxia image build"
  echo "$dir"
}

cmd_info() {
  local k dir; k="$(key)"; dir="$CACHE/$k"
  echo "key:        $k"
  echo "kernel:     $KERNEL_PKG $KERNEL_PKG_VERSION + distro/system-vm/kernel.config"
  if [ ! -f "$dir/info.json" ]; then
    echo "image:      not built (./nxia image build)"
    [ -L "$CACHE/current" ] && echo "current:    $(readlink -f "$CACHE/current") (older inputs)"
    return 0
  fi
  field() { sed -n "s/^ *\"$1\": *\"\{0,1\}\([^\",]*\).*$/\1/p" "$dir/info.json"; }
  echo "release:    $(field kernel_release)"
  echo "config:     sha256 $(field config_sha256)"
  echo "bzImage:    $(field bzimage_bytes) bytes"
  echo "initramfs:  $(field initramfs_bytes) bytes (/init: $(field init))"
  echo "built:      $(field built) in $(field build_seconds) s"
  echo "path:       $dir"
}

case "${1:-build}" in
  build) cmd_build ;;
  info) cmd_info ;;
  path) built_dir ;;
  check) dir="$(built_dir)"; "$HERE/check-config.sh" "$dir/config" ;;
  key) key ;;
  *) die "unknown command '$1': build, info, path or check" ;;
esac
