#!/usr/bin/env bash
# check-config.sh CONFIG [REQUIRED]: fails, naming each one, if the kernel .config CONFIG lacks an
# option of REQUIRED (default: required.config next to this script).
set -euo pipefail
config="${1:?usage: check-config.sh KERNEL-CONFIG [REQUIRED]}"
required="${2:-$(dirname "${BASH_SOURCE[0]}")/required.config}"
[ -f "$config" ] || { echo "check-config: no kernel config at $config" >&2; exit 1; }
bad=0 n=0
while IFS= read -r line; do
  case "$line" in
    CONFIG_*=n)
      n=$((n + 1)); opt="${line%%=*}"
      if grep -q "^$opt=" "$config"; then echo "check-config: $opt must be off, is $(grep "^$opt=" "$config")" >&2; bad=$((bad + 1)); fi ;;
    CONFIG_*=*)
      n=$((n + 1))
      if ! grep -qxF "$line" "$config"; then
        got="$(grep -E "^(# )?${line%%=*}[= ]" "$config" || true)"
        echo "check-config: $line missing (${got:-not in the config})" >&2; bad=$((bad + 1))
      fi ;;
  esac
done < "$required"
if [ "$bad" -ne 0 ]; then
  echo "check-config: $bad of $n required options missing in $config" >&2
  exit 1
fi
echo "check-config: all $n required options present in $config"
