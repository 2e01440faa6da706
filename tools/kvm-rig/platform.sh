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
cat > "$P/run.sh" <<RUN
#!/bin/sh
cd /payload
exec ./$(basename "$JRE")/bin/java --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow \\
  -Dorg.osgi.framework.storage=/tmp/felix -Dnxia.guest.images=/payload/images -Dnxia.debug=${NXIA_DEBUG:-false} \\
  -Dgosh.args=--nointeractive -Dnxia.command="\$1" -jar nxia.jar
RUN
chmod +x "$P/run.sh"
echo "kvm-rig: running '$1' inside the rig (QEMU TCG, nested SVM): figures from here are not comparable with a real host" >&2
RIG_MEM="${RIG_MEM:-3G}" RIG_TIMEOUT="${RIG_TIMEOUT:-1800}" \
  "$HERE/run-in-kvm.sh" "$JRE" "$P/nxia.jar" "$P/images" "$P/run.sh" -- ./run.sh "$1"
