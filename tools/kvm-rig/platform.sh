#!/bin/bash
# platform.sh GOGO-COMMAND: runs the exported platform (distro/target/nxia.jar)
# with one command inside the nested-KVM rig. Used by `./nxia rig ...`.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/tools/kvm-rig"
JAVA_HOME="${JAVA_HOME:-$(ls -d /usr/lib/jvm/*25* 2>/dev/null | head -1)}"
RIG="$("$HERE/setup.sh")"
JRE="$("$HERE/jre.sh" "$RIG")"
P="$(mktemp -d)"; trap 'rm -rf "$P"' EXIT
cp "$ROOT/distro/target/nxia.jar" "$P/"
cp -a "$ROOT/guest/target/images" "$P/images"
# the System VM image (bench:boot, vm:exec) and, for bench:boot's peer, this host's QEMU and its firmware
extra=()
image="$("$ROOT/distro/system-vm/build.sh" path 2>/dev/null || true)"
if [ -n "$image" ] && [ -f "$image/bzImage" ]; then
  mkdir -p "$P/system-vm"; cp "$image/bzImage" "$image"/initramfs.cpio.gz "$P/system-vm/"; extra+=("$P/system-vm")
fi
qemu="$(command -v qemu-system-x86_64 || true)"
if [ "$1" != "${1#bench:boot}" ] && [ -n "$qemu" ]; then
  # QEMU finds its firmware in ../share/qemu next to its binary
  mkdir -p "$P/bin" "$P/share/qemu"; cp "$qemu" "$P/bin/"; cp -L /usr/share/qemu/qboot.rom /usr/share/qemu/bios-microvm.bin "$P/share/qemu/"
  extra+=("$P/bin" "$P/share")
fi
cat > "$P/run.sh" <<RUN
#!/bin/sh
cd /payload
PATH="/payload/bin:\$PATH" exec ./$(basename "$JRE")/bin/java --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow \\
  -Dorg.osgi.framework.storage=/tmp/felix -Dnxia.guest.images=/payload/images -Dnxia.debug=${NXIA_DEBUG:-false} \\
  -Dgosh.args=--nointeractive -Dnxia.system.vm=/payload/system-vm -Dnxia.command="\$1" -jar nxia.jar
RUN
chmod +x "$P/run.sh"
echo "kvm-rig: running '$1' inside the rig (QEMU TCG, nested SVM): figures from here are not comparable with a real host" >&2
RIG_MEM="${RIG_MEM:-3G}" RIG_TIMEOUT="${RIG_TIMEOUT:-1800}" \
  "$HERE/run-in-kvm.sh" "$JRE" "$P/nxia.jar" "$P/images" "${extra[@]}" "$P/run.sh" -- ./run.sh "$1"
