#!/usr/bin/env python3
"""emu-run.py - run guest images in the Unicorn CPU emulator (optional test).

Not KVM: it checks the guests and the kit against the ABI where no /dev/kvm
exists. kvm-floor's `layout --dump` builds guest RAM exactly as the floor
would (page tables, GDT, TSS, boot block, image); this script loads it with
paging on (CR0/CR3/CR4/EFER per the ABI entry table), starts at the ELF entry
with RSP = stack_top and RDI = 0x1000, and plays the VMM's part for ports
0x700/0x704/0x708/0x70c/0xe9 and unclaimed ports/MMIO. Host function
"upper" returns its argument in upper case.

usage: emu-run.py FLOOR OUTDIR   (exit 0 all pass, 1 failure, 77 skipped)
"""
import hashlib
import os
import struct
import subprocess
import sys

try:
    from unicorn import Uc, UcError, UC_ARCH_X86, UC_MODE_64, UC_HOOK_INSN, UC_HOOK_MEM_UNMAPPED, UC_HOOK_INTR
    from unicorn.x86_const import *
except ImportError:
    print("  SKIP    emu: python3 module 'unicorn' is not installed (pip install unicorn)")
    sys.exit(77)

RAM_MIB = 16
MMIO = 0xd0000000
NEEDS_DEVICES = ("virtio-", "blk-", "uart", "debug-exit", "reset", "portal-")


def run(floor, elf, work, arg=0, inp=None, max_insns=50_000_000):
    dump = os.path.join(work, os.path.basename(elf) + ".ram")
    cmd = [floor, "layout", elf, "--ram", str(RAM_MIB), "--arg", str(arg), "--dump", dump]
    if inp is not None:
        path = dump + ".in"
        with open(path, "wb") as f:
            f.write(inp)
        cmd += ["--input", path]
    line = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    kv = dict(x.split("=", 1) for x in line.split()[2:])
    entry = int(kv["entry"], 16)
    stack_top = int(kv["stack_top"], 16)
    pml4 = int(kv["pt"].split("+")[0], 16)
    ram = open(dump, "rb").read()
    os.unlink(dump)

    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.mem_map(0, len(ram))
    uc.mem_write(0, ram)
    st = {"console": b"", "status": None, "bench": 0, "stop": None}

    def out(uc, port, size, value, _):
        if port == 0x70c:
            st["bench"] += 1
        elif port == 0x700 and size == 4:
            st["status"] = value
            st["stop"] = "exit"
            uc.emu_stop()
        elif port == 0x704 and size == 4:
            assert value <= 32768, value
            st["console"] += bytes(uc.mem_read(0x8000, value))
        elif port == 0xe9 and size == 1:
            st["console"] += bytes([value])
        elif port == 0x708 and size == 4:
            hc = bytearray(uc.mem_read(value, 88))
            magic, ver = struct.unpack_from("<IH", hc, 0)
            name = hc[16:48].split(b"\0")[0].decode()
            ag, al, rg, rc = struct.unpack_from("<QQQQ", hc, 48)
            status, rl = -2, 0
            if magic != 0x4348584e or ver != 1 or value % 8:
                status = -1
            elif name == "upper":
                res = bytes(uc.mem_read(ag, al)).upper()
                if len(res) > rc:
                    status = -4
                else:
                    uc.mem_write(rg, res)
                    status, rl = 0, len(res)
            uc.mem_write(value + 8, struct.pack("<i", status))
            uc.mem_write(value + 80, struct.pack("<Q", rl))
        else:
            st["stop"] = "bad_port 0x%x" % port
            uc.emu_stop()

    def unmapped(uc, access, addr, size, value, _):
        st["stop"] = "bad_mmio 0x%x" % addr if MMIO <= addr < MMIO + 0x200000 else "fault 0x%x" % addr
        return False

    def intr(uc, intno, _):
        st["stop"] = "shutdown (exception %d)" % intno
        uc.emu_stop()

    uc.hook_add(UC_HOOK_INSN, out, None, 1, 0, UC_X86_INS_OUT)
    uc.hook_add(UC_HOOK_MEM_UNMAPPED, unmapped)
    uc.hook_add(UC_HOOK_INTR, intr)

    uc.reg_write(UC_X86_REG_CR3, pml4)
    uc.reg_write(UC_X86_REG_CR4, 0x20)
    uc.msr_write(0xc0000080, 0xd01)
    uc.reg_write(UC_X86_REG_CR0, 0x80050033)
    uc.reg_write(UC_X86_REG_RSP, stack_top)
    uc.reg_write(UC_X86_REG_RDI, 0x1000)
    uc.reg_write(UC_X86_REG_RFLAGS, 0x2)
    try:
        uc.emu_start(entry, 0xffffffffffffffff, count=max_insns)
    except UcError as e:
        if st["stop"] is None:
            st["stop"] = "error %s at rip 0x%x" % (e, uc.reg_read(UC_X86_REG_RIP))
    if st["stop"] is None:
        st["stop"] = "timeout"
    boot = bytes(uc.mem_read(0x1000, 384))
    out_gpa, out_cap, out_len = struct.unpack_from("<QQQ", boot, 64)
    st["output"] = bytes(uc.mem_read(out_gpa, min(out_len, out_cap))) if out_len else b""
    return st


def main():
    floor, outdir = sys.argv[1], sys.argv[2]
    work = os.path.join(outdir, "test")
    os.makedirs(work, exist_ok=True)
    g = lambda n: os.path.join(outdir, n + ".elf")
    fails = []

    def check(name, cond, st):
        if not cond:
            fails.append(name)
            print("emu: FAIL %s: %r" % (name, {k: v for k, v in st.items()}), file=sys.stderr)

    st = run(floor, g("hello"), work)
    check("hello", st["stop"] == "exit" and st["status"] == 0 and st["console"] == b"hello from an NXIA micro-VM\n", st)

    for data in (b"", b"abc", bytes(range(256)) * 41, b"a" * 100000):
        st = run(floor, g("sha256"), work, inp=data)
        d = hashlib.sha256(data).digest()
        check("sha256 len %d" % len(data), st["stop"] == "exit" and st["status"] == 0 and st["output"] == d
              and st["console"] == b"sha256 " + d.hex().encode() + b"\n", st)

    st = run(floor, g("hostcall"), work)
    check("hostcall", st["stop"] == "exit" and st["status"] == 0
          and st["console"].startswith(b"host says: HELLO FROM THE GUEST\nno-such-function: status -2"), st)

    for n in (0, 1, 1000):
        st = run(floor, g("exits"), work, arg=n)
        check("exits %d" % n, st["stop"] == "exit" and st["status"] == 0 and st["bench"] == n
              and len(st["output"]) == 16 and struct.unpack_from("<Q", st["output"])[0] == n, st)

    st = run(floor, g("spin"), work, max_insns=200_000)
    check("spin", st["stop"] == "timeout" and st["console"] == b"", st)

    st = run(floor, g("counter"), work, arg=10, max_insns=200_000)
    check("counter", st["stop"] == "timeout"
          and st["console"].startswith(b"counter: boot\ntick 1\ntick 2\ntick 3\n")
          and st["console"].count(b"counter: boot") == 1, st)

    st = run(floor, g("bad-port"), work)
    check("bad-port", st["stop"] == "bad_port 0x1234" and st["console"].startswith(b"bad-port:"), st)

    st = run(floor, g("bad-mmio"), work)
    check("bad-mmio", st["stop"] == "bad_mmio 0xd0000100" and st["console"].startswith(b"bad-mmio:"), st)

    st = run(floor, g("triple-fault"), work)
    # Unicorn reports the #UD itself instead of a triple fault; either ends the VM
    check("triple-fault", (st["stop"].startswith("shutdown") or "UC_ERR_INSN_INVALID" in st["stop"]) and st["console"].startswith(b"triple-fault:"), st)

    # The Gemini guests need their host end: gemini-echo the host function "gemini"
    # (Java's Gemini session; this script answers NXIA_HC_ENOENT), gemini-vsock a
    # virtio-vsock device. Without it each must refuse cleanly: a message and exit 1,
    # no fault. Their sessions themselves run in the rig (org.nxia.itest GeminiTest).
    st = run(floor, g("gemini-echo"), work)
    check("gemini-echo without a Gemini host", st["stop"] == "exit" and st["status"] == 1
          and st["console"] == b"gemini open failed: 3\n", st)  # NXIA_GM_EAUTH: the attach was refused
    st = run(floor, g("gemini-vsock"), work)
    check("gemini-vsock without a vsock device", st["stop"] == "exit" and st["status"] == 1
          and st["console"].startswith(b"vsock init failed: "), st)
    print("  emu: gemini-echo, gemini-vsock: refuse cleanly without their host end (sessions: rig only)")

    # Guests that drive devices (virtio-mmio, 16550, debug-exit, i8042 reset)
    # need the Java VMM's device models; the floor and this script have none.
    for name in sorted(os.listdir(outdir)):
        if name.endswith(".elf") and name.startswith(NEEDS_DEVICES):
            print("  SKIP    emu: %s (needs devices)" % name[:-4])

    if fails:
        print("emu: %d failure(s): %s" % (len(fails), ", ".join(fails)), file=sys.stderr)
        return 1
    print("emu: all guests behave")
    return 0


if __name__ == "__main__":
    sys.exit(main())
