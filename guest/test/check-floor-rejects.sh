#!/bin/sh
# check-floor-rejects.sh FLOOR WORKDIR - the floor's loader refuses malformed
# images with a message naming the problem (docs/guest-abi.md, "Image").
set -u
floor=$1
dir=$2
mkdir -p "$dir"
good=$(dirname "$floor")/hello.elf
fail=0

# patch FILE OFFSET OCTAL-BYTES...
patch() {
    f=$1; off=$2; shift 2
    printf "$*" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
}

expect() {
    name=$1; want=$2; f=$3; shift 3
    out=$("$floor" layout "$f" "$@" 2>&1 >/dev/null)
    rc=$?
    if [ $rc -eq 0 ]; then
        echo "check-floor-rejects: $name: accepted" >&2; fail=1
    elif ! echo "$out" | grep -q "$want"; then
        echo "check-floor-rejects: $name: message '$out' does not mention '$want'" >&2; fail=1
    fi
}

echo "just text" > "$dir/text.elf"
expect "not ELF" "not an ELF" "$dir/text.elf"

cp "$good" "$dir/elf32.elf"; patch "$dir/elf32.elf" 4 '\001'
expect "ELF32" "not ELF64" "$dir/elf32.elf"

cp "$good" "$dir/be.elf"; patch "$dir/be.elf" 5 '\002'
expect "big-endian" "little-endian" "$dir/be.elf"

cp "$good" "$dir/i386.elf"; patch "$dir/i386.elf" 18 '\003\000'
expect "EM_386" "EM_X86_64" "$dir/i386.elf"

cp "$good" "$dir/dyn.elf"; patch "$dir/dyn.elf" 16 '\003\000'
expect "ET_DYN" "ET_EXEC" "$dir/dyn.elf"

cp "$good" "$dir/entry.elf"; patch "$dir/entry.elf" 24 '\000\000\000\000\000\000\000\000'
expect "entry 0" "entry point" "$dir/entry.elf"

cp "$good" "$dir/phoff.elf"; patch "$dir/phoff.elf" 32 '\000\000\000\001\000\000\000\000'
expect "phoff" "program header table" "$dir/phoff.elf"

cp "$good" "$dir/phnum.elf"; patch "$dir/phnum.elf" 56 '\101\000'
expect "65 phdrs" "program headers" "$dir/phnum.elf"

# first PT_LOAD: p_filesz (phoff + 32) > p_memsz (phoff + 40): make p_memsz 0
cp "$good" "$dir/memsz.elf"; patch "$dir/memsz.elf" $((64 + 40)) '\000\000\000\000\000\000\000\000'
expect "filesz > memsz" "p_filesz" "$dir/memsz.elf"

# first PT_LOAD: p_offset (phoff + 8) far past the end of the file
cp "$good" "$dir/range.elf"; patch "$dir/range.elf" $((64 + 8)) '\000\000\000\000\001\000\000\000'
expect "file range" "outside the file" "$dir/range.elf"

# first PT_LOAD: p_paddr (phoff + 24) != p_vaddr
cp "$good" "$dir/paddr.elf"; patch "$dir/paddr.elf" $((64 + 24)) '\000\000\040\000\000\000\000\000'
expect "paddr" "p_paddr" "$dir/paddr.elf"

# an image too big for 2 MiB of RAM: first PT_LOAD p_memsz = 0x200000
cp "$good" "$dir/big.elf"; patch "$dir/big.elf" $((64 + 40)) '\000\000\040\000\000\000\000\000'
expect "image limit" "image limit" "$dir/big.elf" --ram 2

dd if=/dev/zero of="$dir/input.bin" bs=1024 count=2048 status=none
expect "input too big" "do not fit" "$good" --ram 2 --input "$dir/input.bin"

exit $fail
