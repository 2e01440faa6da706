#!/usr/bin/env bash
# need.sh PURPOSE...: makes sure the Debian packages a purpose needs are installed.
#
#   build   the guest kit, the agent and the C floor: gcc, make, binutils
#   test    the guest emulator check (guest/test/emu-run.py): python3-unicorn; virtio-net's passt;
#           virtio-fs's virtiofsd (Debian's, in qemu-system-common);
#           the ACPI tables' checks (AcpiTablesIaslTest, AcpiExecTest): iasl, acpiexec from acpica-tools
#   image   the System VM image: the kernel build's tools, static busybox, cpio
#   rootfs  the System VM's Debian root file system: mmdebstrap, e2fsprogs (mkfs.ext4 -d, resize2fs)
#   rig     the nested-KVM rig: QEMU, static busybox, cpio, xz; passt (the rig carries the host's)
#   bench   bench io's host side (the peer): fio, iperf3
#
# With apt rights (root, or sudo without a password) it installs what is missing, saying so;
# otherwise it prints the one command that does and fails. Nothing is done when all is there.
set -euo pipefail

missing=()
want() {  # want PACKAGE TEST-COMMAND...: PACKAGE is needed unless the test passes
  local pkg="$1"; shift
  "$@" >/dev/null 2>&1 && return 0
  case " ${missing[*]:-} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
}
has() { command -v "$1"; }
# (grep without -q: an early exit would SIGPIPE the writer and, under pipefail, fail the check)
static_busybox() { [ -x /bin/busybox ] && ! readelf -l /bin/busybox 2>/dev/null | grep INTERP >/dev/null && /bin/busybox --list | grep -x insmod >/dev/null; }

for purpose in "$@"; do
  case "$purpose" in
    build) want gcc has gcc; want make has make; want binutils has readelf ;;
    test)  want python3-unicorn /usr/bin/python3 -c 'import unicorn'; want passt test -x /usr/bin/passt
           want qemu-system-common test -x /usr/lib/qemu/virtiofsd
           want acpica-tools has iasl; want acpica-tools has acpiexec ;;
    image) want gcc has gcc; want make has make; want binutils has readelf; want patch has patch
           want flex has flex; want bison has bison; want bc has bc; want xz-utils has xz
           want libelf-dev test -f /usr/include/gelf.h; want libssl-dev test -f /usr/include/openssl/ssl.h
           want busybox-static static_busybox; want cpio has cpio ;;
    rootfs) want mmdebstrap has mmdebstrap; want e2fsprogs has mkfs.ext4; want e2fsprogs has resize2fs ;;
    rig)   want qemu-system-x86 has qemu-system-x86_64; want busybox-static static_busybox
           want cpio has cpio; want xz-utils has xz; want passt test -x /usr/bin/passt ;;
    bench) want fio has fio; want iperf3 has iperf3 ;;
    *) echo "need.sh: unknown purpose '$purpose' (build, test, image, rootfs, rig, bench)" >&2; exit 2 ;;
  esac
done
[ ${#missing[@]} -gt 0 ] || exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo"
  else
    echo "nxia: missing Debian packages for $*: ${missing[*]}" >&2
    echo "nxia: install them, then run this again:  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
echo "nxia: installing ${missing[*]} (needed for $*)" >&2
log="$(mktemp)"
if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  tail -20 "$log" >&2; rm -f "$log"
  echo "nxia: apt-get could not install ${missing[*]} (above)" >&2
  exit 1
fi
rm -f "$log"
