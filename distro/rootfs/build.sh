#!/usr/bin/env bash
# The System VM's root file system: a minimal Debian bookworm (mmdebstrap, variant apt) with the
# packages below, in an ext4 image the System VM mounts read-only under a per-VM overlay
# (docs/linux-vm.md, "Root file system").
#
#   build.sh build   build the image for the current inputs (seconds when cached)
#   build.sh info    what the image for the current inputs is (size, packages, path)
#   build.sh path    print the image file; fails if it is not built
#
# The inputs' hash (this script, the package list, the suite, the mirrors) is the cache key:
# ~/.cache/nxia/rootfs/<key>/ holds rootfs.ext4, packages.txt and info.json;
# ~/.cache/nxia/rootfs/current links to the last one built.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SUITE=bookworm
PACKAGES="apt,bash,criu,iproute2,fio,iperf3,procps,mount"
MIRRORS=(
  "deb http://deb.debian.org/debian $SUITE main"
  "deb http://deb.debian.org/debian $SUITE-updates main"
  "deb http://deb.debian.org/debian-security $SUITE-security main"
)
# Documentation, manuals and translations are most of a small Debian's bytes; licences stay.
DPKG_OPTS=(
  'path-exclude=/usr/share/doc/*' 'path-include=/usr/share/doc/*/copyright'
  'path-exclude=/usr/share/man/*' 'path-exclude=/usr/share/info/*'
  'path-exclude=/usr/share/locale/*' 'path-include=/usr/share/locale/locale.alias'
  'path-exclude=/usr/share/lintian/*' 'path-exclude=/usr/share/bash-completion/*'
)
CACHE="${NXIA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nxia}/rootfs"

say() { echo "rootfs: $*" >&2; }
die() { echo "rootfs: $*" >&2; exit 1; }

inputs() {
  echo "suite $SUITE"
  echo "packages $PACKAGES"
  printf 'mirror %s\n' "${MIRRORS[@]}"
  sha256sum < "$HERE/build.sh"
}
key() { inputs | sha256sum | cut -c1-16; }

# Runs inside mmdebstrap's chroot namespace (customize hook), so owners come out as the guest's.
# mkfs_hook CHROOT OUT-DIR: writes OUT-DIR/rootfs.ext4 and OUT-DIR/packages.txt
mkfs_hook() {
  local root="$1" out="$2" kib files
  # What path-exclude could not keep out: files mmdebstrap itself extracted before dpkg's config.
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/*
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null || true
  # The agent is PID 1 and mounts what the guest needs; these are its mount points.
  mkdir -p "$root/run" "$root/tmp" "$root/proc" "$root/sys" "$root/dev" "$root/mnt"
  echo nxia > "$root/etc/hostname"
  dpkg-query --admindir="$root/var/lib/dpkg" -W -f '${db:Status-Abbrev} ${Package} ${Version}\n' \
    | awk '$1 == "ii" {print $2, $3}' > "$out/packages.txt"
  # mmdebstrap has /proc, /sys and /dev mounted in the chroot now: a plain bind mount sees the tree without them.
  local tree; tree="$(mktemp -d)"
  mount --bind "$root" "$tree" || die "cannot bind-mount the chroot (mkfs-hook runs as root or in mmdebstrap's namespace)"
  kib="$(du -sk --apparent-size "$tree" | cut -f1)"
  files="$(find "$tree" | wc -l)"
  say "[3/4] ext4 image: $((kib / 1024)) MiB in $files files ($(wc -l < "$out/packages.txt") packages)"
  # Room for ext4's metadata, then shrunk to the minimum: the base is read-only, each VM writes to
  # its own overlay layer. No journal: nothing ever writes this file system.
  mkfs.ext4 -q -F -m 0 -O ^has_journal -N $((files + files / 4 + 1024)) -L nxia-rootfs \
    -E root_owner=0:0 -d "$tree" "$out/rootfs.ext4" "$((kib * 5 / 4 + 64 * 1024))k" >&2 || { umount "$tree"; die "mkfs.ext4 failed"; }
  umount "$tree" && rmdir "$tree"
  e2fsck -fy "$out/rootfs.ext4" >/dev/null 2>&1 || [ $? -le 1 ] || die "e2fsck found errors in the new image"
  resize2fs -M "$out/rootfs.ext4" >/dev/null 2>&1 || die "resize2fs -M failed"
  e2fsck -fn "$out/rootfs.ext4" >/dev/null 2>&1 || die "the shrunk image does not check clean"
}

cmd_build() {
  local k dir start=$SECONDS
  k="$(key)"; dir="$CACHE/$k"
  if [ -f "$dir/info.json" ]; then
    ln -sfn "$k" "$CACHE/current"
    say "up to date: $dir"
    echo "$dir/rootfs.ext4"
    return
  fi
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock -n 9 || { say "another build holds $CACHE/.lock; waiting"; flock 9; }
  if [ -f "$dir/info.json" ]; then ln -sfn "$k" "$CACHE/current"; echo "$dir/rootfs.ext4"; return; fi
  "$ROOT/tools/need.sh" rootfs || die "the root file system's tools are missing (above)"
  say "building $k: Debian $SUITE with $PACKAGES (cold: about 10 min; cached afterwards)"
  local tmp="$CACHE/.tmp-$k" opts=() o
  rm -rf "$tmp" && mkdir -p "$tmp" && chmod 0777 "$tmp"   # unshare mode writes as a mapped user
  for o in "${DPKG_OPTS[@]}"; do opts+=(--dpkgopt="$o"); done
  say "[1/4] mmdebstrap: downloading and unpacking (log: $tmp/mmdebstrap.log)"
  # The hook runs this script again: the chroot's namespace is where owners are right.
  set +o pipefail
  mmdebstrap --variant=apt --include="$PACKAGES" --aptopt='APT::Install-Recommends "false"' \
      "${opts[@]}" --format=null \
      --customize-hook="$HERE/build.sh mkfs-hook \"\$1\" $tmp" \
      "$SUITE" /dev/null "${MIRRORS[@]}" </dev/null 2>&1 \
    | tee "$tmp/mmdebstrap.log" | while IFS= read -r line; do   # (awk would buffer its input)
        case "$line" in
          "I: "running*|"I: "downloading*|"I: "extracting*|"I: "installing*|"I: "cleaning*|"I: "success*) say "[2/4] ${line#I: }" ;;
          "rootfs: "*) echo "$line" >&2 ;;
        esac
      done
  local rc=${PIPESTATUS[0]}
  set -o pipefail
  [ "$rc" -eq 0 ] && [ -s "$tmp/rootfs.ext4" ] \
    || { grep -E '^E:|error' "$tmp/mmdebstrap.log" | tail -20 >&2; die "mmdebstrap failed (status $rc); the log: $tmp/mmdebstrap.log"; }
  say "[4/4] storing $dir"
  rm -f "$tmp/mmdebstrap.log"
  cat > "$tmp/info.json" <<EOF
{
  "key": "$k",
  "suite": "$SUITE",
  "packages": "$PACKAGES",
  "installed_packages": $(wc -l < "$tmp/packages.txt"),
  "image_bytes": $(stat -c %s "$tmp/rootfs.ext4"),
  "image_allocated_bytes": $(($(stat -c %b "$tmp/rootfs.ext4") * $(stat -c %B "$tmp/rootfs.ext4"))),
  "sha256": "$(sha256sum < "$tmp/rootfs.ext4" | cut -d' ' -f1)",
  "built": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "build_seconds": $((SECONDS - start))
}
EOF
  chmod 0755 "$tmp"
  chmod 0444 "$tmp/rootfs.ext4"   # the shared base: nothing writes it
  rm -rf "$dir" && mv "$tmp" "$dir"
  ln -sfn "$k" "$CACHE/current"
  say "built in $((SECONDS - start)) s: $(stat -c %s "$dir/rootfs.ext4") bytes, $(wc -l < "$dir/packages.txt") packages"
  echo "$dir/rootfs.ext4"
}

built_image() {
  local dir; dir="$CACHE/$(key)"
  [ -f "$dir/info.json" ] || die "no root file system for the current inputs (key $(key)); build it: ./nxia image rootfs"
  echo "$dir/rootfs.ext4"
}

cmd_info() {
  local k dir; k="$(key)"; dir="$CACHE/$k"
  echo "key:        $k"
  echo "debian:     $SUITE, variant apt, with $PACKAGES"
  if [ ! -f "$dir/info.json" ]; then
    echo "image:      not built (./nxia image rootfs)"
    [ -L "$CACHE/current" ] && echo "current:    $(readlink -f "$CACHE/current") (older inputs)"
    return 0
  fi
  field() { sed -n "s/^ *\"$1\": *\"\{0,1\}\([^\",]*\).*$/\1/p" "$dir/info.json"; }
  echo "image:      $(field image_bytes) bytes ($(field image_allocated_bytes) allocated), sha256 $(field sha256)"
  echo "installed:  $(field installed_packages) packages ($dir/packages.txt)"
  echo "built:      $(field built) in $(field build_seconds) s"
  echo "path:       $dir/rootfs.ext4"
}

case "${1:-build}" in
  build) cmd_build ;;
  info) cmd_info ;;
  path) built_image ;;
  key) key ;;
  mkfs-hook) [ $# -eq 3 ] || die "mkfs-hook CHROOT OUT-DIR"; mkfs_hook "$2" "$3" ;;
  *) die "unknown command '$1': build, info or path" ;;
esac
