#!/bin/bash
# jre.sh RIG-DIR: links (once) a small Java runtime for the rig and prints its path.
# Everything in the rig is emulated, so a smaller runtime boots faster.
set -euo pipefail
# set -e ends the script at a failing command: say which, so a log never stops without a word
trap 'st=$?; echo "kvm-rig: ${0##*/} stopped: line $LINENO: $BASH_COMMAND (status $st)" >&2' ERR
. "$(dirname "$0")/../java.sh"
JAVA_HOME="$(find_java)"
version="$("$JAVA_HOME/bin/java" -version 2>&1 | sed -n '1s/.*version "\([^"]*\)".*/\1/p')"
JRE="$(cd "$1/.." && pwd)/jre-$version"
if [ ! -x "$JRE/bin/java" ]; then
  echo "kvm-rig: linking a Java runtime into $JRE" >&2
  "$JAVA_HOME/bin/jlink" --add-modules java.base,java.management,jdk.management,java.logging,java.xml,jdk.unsupported,java.naming,java.desktop,java.sql,java.rmi,jdk.jfr \
      --strip-debug --no-header-files --no-man-pages --output "$JRE.tmp.$$" >&2
  mv "$JRE.tmp.$$" "$JRE"
fi
echo "$JRE"
