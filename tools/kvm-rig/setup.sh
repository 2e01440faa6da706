#!/bin/bash
# setup.sh: prepares the nested-KVM rig and prints its directory.
#
# The rig is QEMU in pure software emulation (TCG) with an emulated AMD SVM
# CPU, booting Debian's kernel, which loads kvm + kvm_amd: inside it /dev/kvm
# is the real KVM, nested. It lets the VM tests run on a host that has no
# /dev/kvm at all (e.g. one whose kernel is itself a PVM guest). It is slow
# (everything is emulated), so it is for correctness, not for figures.
#
# Installs (Debian packages): qemu-system-x86 busybox-static cpio xz-utils.
# Caches, outside the work tree: ${NXIA_CACHE:-~/.cache/nxia}/kvm-rig/<kernel>/.
set -euo pipefail
# set -e ends the script at a failing command: say which, so a log never stops without a word
trap 'st=$?; echo "kvm-rig: ${0##*/} stopped: line $LINENO: $BASH_COMMAND (status $st)" >&2' ERR
log() { echo "kvm-rig: $*" >&2; }

"$(dirname "$0")/../need.sh" rig >&2

# The kernel the linux-image-amd64 metapackage points at (any version with kvm_amd works).
pkg=$( { apt-cache depends linux-image-amd64 2>/dev/null || true; } | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -1)
[ -n "$pkg" ] || { log "Debian's package lists do not name linux-image-amd64's kernel: apt-get update"; apt-get update -qq >&2
  pkg=$( { apt-cache depends linux-image-amd64 || true; } | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -1); }
[ -n "$pkg" ] || { log "cannot find Debian's linux-image-amd64 kernel package"; exit 1; }
kver=${pkg#linux-image-}
# The suffix names the initramfs layout: bump it when this script changes what it builds.
RIG="${NXIA_CACHE:-$HOME/.cache/nxia}/kvm-rig/$kver-r5"
if [ -f "$RIG/base.cpio" ] && [ -f "$RIG/vmlinux" ]; then
  echo "$RIG"; exit 0
fi

log "building the rig for kernel $kver in $RIG"
mkdir -p "$RIG"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download "$pkg" >&2)
dpkg-deb -x "$work"/linux-image-*.deb "$work/k"
M="$work/k/lib/modules/$kver/kernel"

S="$work/stage"
mkdir -p "$S"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,root,payload,etc} "$S/lib/modules/$kver"
cp /bin/busybox "$S/bin/busybox"
for a in $(/bin/busybox --list-full); do [ -e "$S/$a" ] || ln -s /bin/busybox "$S/$a"; done
# virtio-blk (over PCI) for the drives RIG_DRIVES attaches (init loads them when the command line says rig.drives)
for m in virt/lib/irqbypass arch/x86/kvm/kvm arch/x86/kvm/kvm-amd drivers/crypto/ccp/ccp \
         drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_legacy_dev \
         drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci drivers/block/virtio_blk; do
  if [ -f "$M/$m.ko" ]; then cp "$M/$m.ko" "$S/lib/modules/$kver/"
  elif [ -f "$M/$m.ko.xz" ]; then xz -dc "$M/$m.ko.xz" > "$S/lib/modules/$kver/$(basename "$m").ko"
  else log "kernel $kver has no $m module"; exit 1; fi
done
cp "$(dirname "$0")/init" "$S/init"
chmod 755 "$S/init"
echo 'root:x:0:0:root:/root:/bin/sh' > "$S/etc/passwd"
echo 'root:x:0:' > "$S/etc/group"
printf '127.0.0.1 localhost rig\n::1 localhost\n' > "$S/etc/hosts"
(cd "$S" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$RIG/base.cpio"
# Boot the uncompressed vmlinux (PVH entry): decompressing bzImage under TCG costs seconds.
vmlinuz="$work/k/boot/vmlinuz-$kver"
off=$(grep -abo "$(printf '\3757zXZ\0')" "$vmlinuz" | head -1 | cut -d: -f1)
tail -c +$((off + 1)) "$vmlinuz" | xz -dc 2>/dev/null > "$RIG/vmlinux" || true
if ! head -c4 "$RIG/vmlinux" | grep -q ELF; then
  rm -f "$RIG/vmlinux" "$RIG/base.cpio"; log "could not extract vmlinux from $vmlinuz"; exit 1
fi
echo "$RIG"
