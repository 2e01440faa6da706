#!/bin/bash
# run-in-kvm.sh FILE... -- COMMAND [ARGS...]
#
# Boots a TCG-emulated AMD-SVM x86-64 VM (Debian 6.1 kernel, kvm + kvm_amd loaded, so
# /dev/kvm is real inside), with FILEs (files or directories) copied into /payload,
# runs COMMAND with cwd /payload, streams the serial console to stdout, and exits with
# COMMAND's exit status.
#
# Shared-library dependencies (ldd) of every dynamic ELF among FILEs and RIG_HOSTFILES are
# copied into the initramfs at their host paths, plus the dynamic loader.
# Kernel: uncompressed vmlinux booted via PVH (skips xz decompression under TCG).
#
# Env:  RIG_TIMEOUT  seconds (default 600)         RIG_MEM   guest RAM (default 2G)
#       RIG_SMP      vCPUs (default 2)             RIG_CPU   QEMU -cpu (default max; EPYC,+svm also works)
#       RIG_NPT      0|1: kvm_amd npt= (default: module default, i.e. 1)
#       RIG_KVM_AMD  more kvm_amd parameters, comma-separated (e.g. vgif=0)
#       RIG_APPEND   extra kernel cmdline (e.g. rig.dmesg prints dmesg before COMMAND)
#       RIG_HOSTFILES  space-separated host paths to copy in at the same path
#       RIG_DRIVES   space-separated raw images attached as virtio disks, /dev/vda, /dev/vdb, ... inside;
#                    the rig may write them, but its writes go to a QEMU snapshot, never to the file
#       RIG_KEEP=1   keep the temp dir (initramfs + log) and print its path
#       RIG_INTERACTIVE=1  this terminal is the rig's console: COMMAND reads it (a shell, a VM console)
# Exit: COMMAND's status; 124 on timeout; 125 if the VM ended without an exit marker.
set -u
RIG=$("$(dirname "$(readlink -f "$0")")/setup.sh") || { echo "rig: setup failed" >&2; exit 2; }
usage() { echo "usage: $0 FILE... -- COMMAND [ARGS...]" >&2; exit 2; }

files=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do files+=("$1"); shift; done
[ $# -gt 0 ] || usage
shift
[ $# -gt 0 ] || usage

TMP=$(mktemp -d /tmp/rig.XXXXXX)
QPID=
cleanup() {
  [ -n "$QPID" ] && kill "$QPID" 2>/dev/null
  if [ "${RIG_KEEP:-0}" = 1 ]; then echo "rig: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

S=$TMP/stage
mkdir -p "$S/payload"
for f in "${files[@]}"; do
  [ -e "$f" ] || { echo "rig: no such file: $f" >&2; exit 2; }
  cp -a -H "$f" "$S/payload/" || exit 2   # top-level symlink followed
done

# --- shared-library dependencies -------------------------------------------------------
libs=$TMP/libs
: > "$libs"
# the libraries (and loader) of a dynamic ELF; ldd prints nothing useful for anything else
deps() {
  [ "$(head -c4 "$1" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 7f454c46 ] || return 0
  LC_ALL=C ldd "$1" 2>/dev/null | awk '
      /=> \// { print $3; next }
      /^[ \t]*\/[^ ]+ \(0x/ { print $1 }' >> "$libs"
}
for h in ${RIG_HOSTFILES:-}; do echo "$h" >> "$libs"; deps "$h"; done
while IFS= read -r -d '' f; do deps "$f"; done < <(find "$S/payload" -type f -print0)
sort -u "$libs" | while read -r l; do
  case "$l" in "$S"/*) continue ;; esac        # resolved inside the payload itself
  [ -e "$l" ] || continue
  mkdir -p "$S$(dirname "$l")"
  cp -L "$l" "$S$l"
  # also provide the canonical path (e.g. /lib64/ld-linux... -> /lib/x86_64-linux-gnu/...)
  r=$(readlink -f "$l")
  if [ "$r" != "$l" ] && [ ! -e "$S$r" ]; then mkdir -p "$S$(dirname "$r")"; cp -L "$l" "$S$r"; fi
done

# --- command script --------------------------------------------------------------------
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
{
  echo '#!/bin/sh'
  echo 'cd /payload'
  printf 'exec'
  for a in "$@"; do printf ' %s' "$(q "$a")"; done
  echo
} > "$S/payload/.rig-cmd"
chmod +x "$S/payload/.rig-cmd"

(cd "$S" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$TMP/payload.cpio" || exit 2
cat "$RIG/base.cpio" "$TMP/payload.cpio" > "$TMP/initrd.cpio"
rm -rf "$S" "$TMP/payload.cpio"

drives=()
for d in ${RIG_DRIVES:-}; do
  [ -f "$d" ] || { echo "rig: no such drive image: $d" >&2; exit 2; }
  drives+=(-drive "file=$d,format=raw,if=virtio,snapshot=on,cache=unsafe")
done
[ ${#drives[@]} -eq 0 ] || RIG_APPEND="${RIG_APPEND:-} rig.drives"

# boot-time trims: no crypto self-tests, no TSC/timer sanity delays, no i8042 probing
[ "${RIG_INTERACTIVE:-0}" = 1 ] && RIG_APPEND="${RIG_APPEND:-} rig.interactive"
APPEND="console=ttyS0 quiet loglevel=3 cryptomgr.notests tsc=reliable no_timer_check i8042.noaux i8042.nokbd i8042.nopnp mitigations=off ${RIG_NPT:+rig.npt=$RIG_NPT} ${RIG_KVM_AMD:+rig.kvm_amd=$RIG_KVM_AMD} ${RIG_APPEND:-}"
LOG=$TMP/serial.log
timeout --foreground -k 5 "${RIG_TIMEOUT:-600}" \
  qemu-system-x86_64 -accel tcg -cpu "${RIG_CPU:-max}" \
    -m "${RIG_MEM:-2G}" -smp "${RIG_SMP:-2}" \
    -nodefaults -no-user-config -display none -serial stdio -monitor none \
    -kernel "$RIG/vmlinux" -initrd "$TMP/initrd.cpio" -append "$APPEND" -no-reboot "${drives[@]}" \
    <"$( [ "${RIG_INTERACTIVE:-0}" = 1 ] && echo /dev/stdin || echo /dev/null)" | tee "$LOG"
st=("${PIPESTATUS[@]}")
if [ "${st[0]}" = 124 ] || [ "${st[0]}" = 137 ]; then
  echo "rig: TIMEOUT after ${RIG_TIMEOUT:-600}s" >&2; exit 124
fi
rc=$(tr -d '\r' < "$LOG" | sed -n 's/^=== RIG-EXIT-STATUS: \([0-9]*\) ===$/\1/p' | tail -1)
if [ -z "$rc" ]; then echo "rig: VM ended (qemu status ${st[0]}) without exit marker" >&2; exit 125; fi
exit "$rc"
