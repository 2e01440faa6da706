#!/usr/bin/env bash
# Debian's stock kernel for NXIA (issue 17): linux-image-6.1.0-*-amd64 as Debian ships it, unmodified,
# and an initramfs that is the System VM's (busybox, the agent) with that package's modules for
# NXIA's devices, loaded by a small /init before the agent starts: Debian builds virtio-mmio,
# virtio-blk, vsock and virtio-rng as modules, and has no CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES, so the
# devices are found only through the ACPI tables NXIA writes (LNRO0005 in the DSDT).
#
#   build.sh build   download the package (apt-get download, cached by version) and build; prints the directory
#   build.sh path    print the directory; fails if it is not built
#   build.sh info    what the directory holds
#
# The cache key is the package, its version, this script and the System VM initramfs it extends:
# ~/.cache/nxia/stock-kernel/<key>/ holds vmlinuz, initramfs.cpio.gz (the System VM's, then a
# second archive with /init, the modules and the agent) and info.json.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# Pinned, so that a run is the same tomorrow; the mirror keeps older versions for a while, and when it
# drops this one the build says so (NXIA_STOCK_KERNEL_PACKAGE/VERSION name another, e.g. the one
# linux-image-amd64 depends on now).
PKG="${NXIA_STOCK_KERNEL_PACKAGE:-linux-image-6.1.0-57-amd64}"
VERSION="${NXIA_STOCK_KERNEL_VERSION:-6.1.192-3}"
# What NXIA's devices need, in the names modinfo gives; their dependencies are added from the modules.
MODULES=(virtio_mmio virtio_blk vmw_vsock_virtio_transport virtio-rng)
CACHE="${NXIA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nxia}/stock-kernel"

# shellcheck source=../apt-download.sh
. "$HERE/../apt-download.sh"

say() { echo "stock-kernel: $*" >&2; }
die() { echo "stock-kernel: $*" >&2; exit 1; }

system_vm() { "$ROOT/distro/system-vm/build.sh" path 2>/dev/null || die "the System VM image is not built (./nxia image build): its initramfs is extended here"; }

key() {
  { echo "$PKG $VERSION"; printf '%s\n' "${MODULES[@]}"; sha256sum < "$HERE/build.sh"; sha256sum < "$(system_vm)/initramfs.cpio.gz"; } \
    | sha256sum | cut -c1-16
}

fetch() {
  apt_download "stock-kernel:" "$PKG" "$VERSION" "$CACHE/dl" \
    "the mirror may have dropped it: NXIA_STOCK_KERNEL_PACKAGE and NXIA_STOCK_KERNEL_VERSION name another (apt-cache depends linux-image-amd64)"
}

# The names a module's .modinfo says it depends on.
depends() { objcopy -O binary --only-section=.modinfo "$1" /dev/stdout 2>/dev/null | tr '\0' '\n' | sed -n 's/^depends=//p' | tr ',' ' '; }

cmd_build() {
  local k dir deb tmp release
  command -v objcopy >/dev/null || die "missing objcopy (binutils)"
  command -v dpkg-deb >/dev/null || die "missing dpkg-deb: the kernel is Debian's package, on a Debian host"
  k="$(key)"; dir="$CACHE/$k"
  if [ -f "$dir/info.json" ]; then ln -sfn "$k" "$CACHE/current"; echo "$dir"; return; fi
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock 9
  if [ -f "$dir/info.json" ]; then ln -sfn "$k" "$CACHE/current"; echo "$dir"; return; fi
  deb="$(fetch)"
  tmp="$CACHE/.tmp-$k"
  rm -rf "$tmp" && mkdir -p "$tmp/pkg" "$tmp/root/lib/modules" "$tmp/root/sbin"
  dpkg-deb -x "$deb" "$tmp/pkg"
  release="$(ls "$tmp/pkg/lib/modules")"
  [ "$(echo "$release" | wc -w)" -eq 1 ] || die "$PKG holds modules for '$release', not one release"
  cp "$tmp/pkg/boot/vmlinuz-$release" "$tmp/vmlinuz"
  # Each wanted module after its dependencies, each once (the order insmod needs).
  declare -A where=() done=()
  local f order=()
  while IFS= read -r f; do where["$(basename "$f" .ko)"]="$f"; done < <(find "$tmp/pkg/lib/modules/$release/kernel" -name '*.ko')
  add() {
    local m="$1" d
    [ -z "${done[$m]:-}" ] || return 0
    [ -n "${where[$m]:-}" ] || die "$PKG has no module $m (built in? then it needs no loading: take it off MODULES)"
    done[$m]=1
    for d in $(depends "${where[$m]}"); do add "$d"; done
    order+=("$m")
  }
  for f in "${MODULES[@]}"; do add "$f"; done
  for f in "${order[@]}"; do cp "${where[$f]}" "$tmp/root/lib/modules/$f.ko"; done
  printf '%s\n' "${order[@]}" > "$tmp/root/lib/modules/order"
  # The System VM's /init is the agent: it goes to /sbin, and /init loads the modules first.
  zcat "$(system_vm)/initramfs.cpio.gz" | (cd "$tmp/root/sbin" && cpio -i --quiet init) && mv "$tmp/root/sbin/init" "$tmp/root/sbin/nxia-agent"
  cat > "$tmp/root/init" <<'INIT'
#!/bin/sh
# Debian's kernel builds NXIA's devices' drivers as modules: load them, then the agent is init (pid 1).
for m in $(cat /lib/modules/order); do
  insmod "/lib/modules/$m.ko" || echo "nxia-init: insmod $m failed"
done
exec /sbin/nxia-agent "$@"
INIT
  chmod 0755 "$tmp/root/init"
  # A second archive after the System VM's: the kernel unpacks both, and /init is this one's.
  { cat "$(system_vm)/initramfs.cpio.gz"
    (cd "$tmp/root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet --reproducible -R 0:0) | gzip -9n
  } > "$tmp/initramfs.cpio.gz"
  cat > "$tmp/info.json" <<EOF
{
  "key": "$k",
  "package": "$PKG $VERSION",
  "kernel_release": "$release",
  "modules": "$(echo "${order[@]}")",
  "vmlinuz_bytes": $(stat -c %s "$tmp/vmlinuz"),
  "initramfs_bytes": $(stat -c %s "$tmp/initramfs.cpio.gz"),
  "built": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}
EOF
  rm -rf "$tmp/pkg" "$tmp/root"
  rm -rf "$dir" && mv "$tmp" "$dir"
  ln -sfn "$k" "$CACHE/current"
  say "built $dir: $PKG $VERSION ($release), modules ${order[*]}"
  echo "$dir"
}

cmd_path() {
  local dir; dir="$CACHE/$(key)"
  [ -f "$dir/info.json" ] || die "not built for the current inputs (./nxia image stock-kernel)"
  echo "$dir"
}

case "${1:-build}" in
  build) cmd_build ;;
  path) cmd_path ;;
  info) cat "$(cmd_path)/info.json" ;;
  *) die "usage: build.sh build|path|info" ;;
esac
