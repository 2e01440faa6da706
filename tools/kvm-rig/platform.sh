#!/bin/bash
# platform.sh GOGO-COMMAND [FILE...]: runs the exported platform with one command inside the
# nested-KVM rig, FILEs copied to /payload/files. An empty command is the interactive Gogo shell
# on the rig's console. The platform is NXIA_JAR, the assembly's jar that ./nxia --assembly picks
# (default distro/target/nxia.jar, the full one). Used by `./nxia` on hosts without /dev/kvm
# and by `./nxia rig ...`.
set -euo pipefail
# set -e ends the script at a failing command: say which, so a log never stops without a word
trap 'st=$?; echo "kvm-rig: ${0##*/} stopped: line $LINENO: $BASH_COMMAND (status $st)" >&2' ERR
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/tools/kvm-rig"
. "$(dirname "$0")/../java.sh"
JAVA_HOME="$(find_java)"
RIG="$("$HERE/setup.sh")"
JRE="$("$HERE/jre.sh" "$RIG")"
P="$(mktemp -d)"; trap 'rm -rf "$P"' EXIT
# inside the rig it is nxia.jar, whichever assembly it is
JAR="${NXIA_JAR:-$ROOT/distro/target/nxia.jar}"
cp "$JAR" "$P/nxia.jar"
gogo="$1"; shift
extra=()
if [ $# -gt 0 ]; then mkdir -p "$P/files"; cp -L "$@" "$P/files/"; extra+=("$P/files"); fi
cp -a "$ROOT/guest/target/images" "$P/images"
# the profiles (FileInstall reads them there; edits made inside the rig stay there)
cp -a "${NXIA_CONF:-$ROOT/distro/conf}" "$P/conf"
# the bundles dropped into deploy/ (FileInstall installs them there, as on a host)
mkdir -p "$P/deploy"; cp -a "${NXIA_DEPLOY:-$ROOT/deploy}/." "$P/deploy/" 2>/dev/null || true
# the System VM image (bench:boot, vm:exec) and, for bench:boot's peer, this host's QEMU and its firmware
image="$("$ROOT/distro/system-vm/build.sh" path 2>/dev/null || true)"
if [ -n "$image" ] && [ -f "$image/bzImage" ]; then
  mkdir -p "$P/system-vm"; cp "$image/bzImage" "$image"/initramfs.cpio.gz "$P/system-vm/"; extra+=("$P/system-vm")
fi
qemu="$(command -v qemu-system-x86_64 || true)"
if [ "$gogo" != "${gogo#bench:boot}" ] && [ -n "$qemu" ]; then
  # QEMU finds its firmware in ../share/qemu next to its binary
  mkdir -p "$P/bin" "$P/share/qemu"; cp "$qemu" "$P/bin/"; cp -L /usr/share/qemu/qboot.rom /usr/share/qemu/bios-microvm.bin "$P/share/qemu/"
  extra+=("$P/bin" "$P/share")
fi
# virtio-net's passt and virtio-fs's virtiofsd at their host paths (the devices run them there), and
# for bench:io its host side's fio and iperf3; run-in-kvm.sh brings the libraries ldd names
hostfiles="${RIG_HOSTFILES:-}"
for tool in /usr/bin/passt /usr/lib/qemu/virtiofsd; do [ -x "$tool" ] && hostfiles+=" $tool"; done
if [ "$gogo" != "${gogo#bench:io}" ]; then
  for tool in fio iperf3; do t="$(command -v "$tool" || true)"; [ -n "$t" ] && hostfiles+=" $t"; done
fi
export RIG_HOSTFILES="$hostfiles"
cat > "$P/run.sh" <<RUN
#!/bin/sh
# passt (virtio-net) sandboxes itself with pivot_root, which the rig's initramfs root (rootfs)
# refuses ("pivot_root: Invalid argument"): run from a bind mount of the root instead.
if [ -z "\${RIG_ROOT_MOVED:-}" ] && [ -x /usr/bin/passt ]; then
  mkdir -p /.root && mount --rbind / /.root && cd /.root && mount --move . / && RIG_ROOT_MOVED=1 exec chroot . /payload/run.sh "\$@"
fi
cd /payload
# one Gogo command, or (none) the interactive shell
# RIG_RAW_TTY (vm:exec --tty): keys pass as typed, the guest pty echoes and edits
${RIG_RAW_TTY:+stty raw -echo 2>/dev/null}
if [ -n "\$1" ]; then set -- -Dgosh.args=--nointeractive "-Dnxia.command=\$1"; else set --; fi
PATH="/payload/bin:\$PATH" exec ./$(basename "$JRE")/bin/java $NXIA_JVM_FLAGS \\
  -Dorg.osgi.framework.storage=/tmp/felix -Dnxia.guest.images=/payload/images -Dnxia.debug=${NXIA_DEBUG:-false} \\
  -Dnxia.system.vm=/payload/system-vm -Dfelix.fileinstall.dir=/payload/conf -Dnxia.deploy=/payload/deploy "\$@" -jar nxia.jar
RUN
chmod +x "$P/run.sh"
if [ -z "$gogo" ]; then
  echo "kvm-rig: the Gogo shell inside the rig (QEMU TCG, nested SVM; slow to start): 'felix:stop 0' ends it" >&2
  export RIG_INTERACTIVE=1
else
  echo "kvm-rig: running '$gogo' on $(basename "$JAR") inside the rig (QEMU TCG, nested SVM): figures from here are not comparable with a real host" >&2
fi
RIG_MEM="${RIG_MEM:-3G}" RIG_TIMEOUT="${RIG_TIMEOUT:-1800}" \
  "$HERE/run-in-kvm.sh" "$JRE" "$P/nxia.jar" "$P/images" "$P/conf" "$P/deploy" "${extra[@]}" "$P/run.sh" -- ./run.sh "$gogo"
