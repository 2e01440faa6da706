#!/bin/sh
# check-elf.sh IMAGE... - each guest image is ET_EXEC, EM_X86_64, entry >= 0x100000,
# and every PT_LOAD has p_vaddr == p_paddr (docs/guest-abi.md, "Image").
set -u
READELF=${READELF:-readelf}
fail=0
for f in "$@"; do
    hdr=$(LC_ALL=C "$READELF" -hW "$f") || { echo "check-elf: $f: readelf failed" >&2; fail=1; continue; }
    echo "$hdr" | grep -Eq '^ *Class: *ELF64$' || { echo "check-elf: $f: not ELF64" >&2; fail=1; }
    echo "$hdr" | grep -Eq '^ *Type: *EXEC ' || { echo "check-elf: $f: not ET_EXEC" >&2; fail=1; }
    echo "$hdr" | grep -Eq '^ *Machine: *Advanced Micro Devices X86-64$' || { echo "check-elf: $f: not EM_X86_64" >&2; fail=1; }
    entry=$(echo "$hdr" | sed -n 's/^ *Entry point address: *0x\([0-9a-fA-F]*\)$/\1/p')
    if [ -z "$entry" ] || [ $((0x$entry)) -lt $((0x100000)) ]; then
        echo "check-elf: $f: entry point 0x$entry below 0x100000" >&2; fail=1
    fi
    loads=$(LC_ALL=C "$READELF" -lW "$f" | awk '$1 == "LOAD"')
    if [ -z "$loads" ]; then
        echo "check-elf: $f: no PT_LOAD" >&2; fail=1
    fi
    bad=$(echo "$loads" | awk '$3 != $4 { print "vaddr " $3 " != paddr " $4 }')
    if [ -n "$bad" ]; then
        echo "check-elf: $f: PT_LOAD $bad" >&2; fail=1
    fi
    for va in $(echo "$loads" | awk '{ print $3 }'); do
        if [ $((va)) -lt $((0x100000)) ]; then
            echo "check-elf: $f: PT_LOAD at $va below 0x100000" >&2; fail=1
        fi
    done
done
exit $fail
