# Sourced, not run: the one JDK lookup and the one set of JVM flags for ./nxia and the rig.
#   find_java            prints a JDK 25+ home (JAVA_HOME if it is one, else /usr/lib/jvm/*), or fails saying what to do
#   NXIA_JVM_FLAGS       the flags of cnf/jvm.properties
NXIA_ROOT="${NXIA_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
NXIA_JVM_FLAGS="$(sed -n 's/^nxia\.jvm\.flags=//p' "$NXIA_ROOT/cnf/jvm.properties")"
[ -n "$NXIA_JVM_FLAGS" ] || { echo "nxia: cnf/jvm.properties has no nxia.jvm.flags" >&2; return 1 2>/dev/null || exit 1; }
grep -qF "<nxia.jvm.flags>$NXIA_JVM_FLAGS</nxia.jvm.flags>" "$NXIA_ROOT/pom.xml" \
  || { echo "nxia: pom.xml's nxia.jvm.flags differ from cnf/jvm.properties: make them the same" >&2; return 1 2>/dev/null || exit 1; }

find_java() {
  local home
  java_ok() { [ -x "$1/bin/java" ] && "$1/bin/java" -version 2>&1 | sed -n '1s/.*version "\([0-9]*\).*/\1/p' | awk '{exit !($1 >= 25)}'; }
  if [ -n "${JAVA_HOME:-}" ] && java_ok "$JAVA_HOME"; then echo "$JAVA_HOME"; return; fi
  for home in /usr/lib/jvm/*25* /usr/lib/jvm/*-2[5-9]* /usr/lib/jvm/*-3[0-9]*; do
    if java_ok "$home"; then echo "$home"; return; fi
  done
  echo "nxia: NXIA needs JDK 25 and found none (JAVA_HOME or /usr/lib/jvm/*25*)." >&2
  echo "nxia: install one (e.g. Temurin 25: apt-get install temurin-25-jdk) or set JAVA_HOME." >&2
  return 1
}
