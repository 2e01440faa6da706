package org.nxia.backend.kvm.internal;

import static java.lang.foreign.MemoryLayout.paddingLayout;
import static java.lang.foreign.MemoryLayout.sequenceLayout;
import static java.lang.foreign.MemoryLayout.structLayout;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.lang.foreign.MemoryLayout;
import java.lang.foreign.StructLayout;

/**
 * The KVM userspace ABI from {@code <linux/kvm.h>} and
 * {@code <asm/kvm.h>} (x86-64): ioctl numbers, exit reasons and the struct
 * layouts, each defined once. {@code KvmAbiTest} checks sizes and offsets
 * against the kernel headers' values.
 */
final class KvmAbi {

    private KvmAbi() {
    }

    // _IOC encoding: dir << 30 | size << 16 | type << 8 | nr.
    private static final int KVMIO = 0xAE;
    private static final long IOC_WRITE = 1;
    private static final long IOC_READ = 2;

    static long io(int nr) {
        return (KVMIO << 8) | nr;
    }

    static long ior(int nr, long size) {
        return (IOC_READ << 30) | (size << 16) | (KVMIO << 8) | nr;
    }

    static long iow(int nr, long size) {
        return (IOC_WRITE << 30) | (size << 16) | (KVMIO << 8) | nr;
    }

    static long iowr(int nr, long size) {
        return ((IOC_READ | IOC_WRITE) << 30) | (size << 16) | (KVMIO << 8) | nr;
    }

    // ---- struct layouts ----

    /** struct kvm_regs: 18 u64. */
    static final StructLayout KVM_REGS = structLayout(
            JAVA_LONG.withName("rax"), JAVA_LONG.withName("rbx"), JAVA_LONG.withName("rcx"), JAVA_LONG.withName("rdx"),
            JAVA_LONG.withName("rsi"), JAVA_LONG.withName("rdi"), JAVA_LONG.withName("rsp"), JAVA_LONG.withName("rbp"),
            JAVA_LONG.withName("r8"), JAVA_LONG.withName("r9"), JAVA_LONG.withName("r10"), JAVA_LONG.withName("r11"),
            JAVA_LONG.withName("r12"), JAVA_LONG.withName("r13"), JAVA_LONG.withName("r14"), JAVA_LONG.withName("r15"),
            JAVA_LONG.withName("rip"), JAVA_LONG.withName("rflags")).withName("kvm_regs");

    /** struct kvm_segment. */
    static final StructLayout KVM_SEGMENT = structLayout(
            JAVA_LONG.withName("base"), JAVA_INT.withName("limit"), JAVA_SHORT.withName("selector"),
            JAVA_BYTE.withName("type"), JAVA_BYTE.withName("present"), JAVA_BYTE.withName("dpl"),
            JAVA_BYTE.withName("db"), JAVA_BYTE.withName("s"), JAVA_BYTE.withName("l"), JAVA_BYTE.withName("g"),
            JAVA_BYTE.withName("avl"), JAVA_BYTE.withName("unusable"), JAVA_BYTE.withName("padding"))
            .withName("kvm_segment");

    /** struct kvm_dtable. */
    static final StructLayout KVM_DTABLE = structLayout(
            JAVA_LONG.withName("base"), JAVA_SHORT.withName("limit"), sequenceLayout(3, JAVA_SHORT).withName("padding"))
            .withName("kvm_dtable");

    static final int KVM_NR_INTERRUPTS = 256;

    /** struct kvm_sregs. */
    static final StructLayout KVM_SREGS = structLayout(
            KVM_SEGMENT.withName("cs"), KVM_SEGMENT.withName("ds"), KVM_SEGMENT.withName("es"),
            KVM_SEGMENT.withName("fs"), KVM_SEGMENT.withName("gs"), KVM_SEGMENT.withName("ss"),
            KVM_SEGMENT.withName("tr"), KVM_SEGMENT.withName("ldt"),
            KVM_DTABLE.withName("gdt"), KVM_DTABLE.withName("idt"),
            JAVA_LONG.withName("cr0"), JAVA_LONG.withName("cr2"), JAVA_LONG.withName("cr3"), JAVA_LONG.withName("cr4"),
            JAVA_LONG.withName("cr8"), JAVA_LONG.withName("efer"), JAVA_LONG.withName("apic_base"),
            sequenceLayout((KVM_NR_INTERRUPTS + 63) / 64, JAVA_LONG).withName("interrupt_bitmap"))
            .withName("kvm_sregs");

    /** struct kvm_userspace_memory_region. */
    static final StructLayout KVM_USERSPACE_MEMORY_REGION = structLayout(
            JAVA_INT.withName("slot"), JAVA_INT.withName("flags"), JAVA_LONG.withName("guest_phys_addr"),
            JAVA_LONG.withName("memory_size"), JAVA_LONG.withName("userspace_addr"))
            .withName("kvm_userspace_memory_region");

    /** kvm_userspace_memory_region.flags: KVM logs the slot's pages that guests write (KVM_GET_DIRTY_LOG). */
    static final int KVM_MEM_LOG_DIRTY_PAGES = 1;
    /** kvm_userspace_memory_region.flags: guest writes to the slot exit as MMIO writes. */
    static final int KVM_MEM_READONLY = 1 << 1;

    /** struct kvm_dirty_log: the slot and where KVM writes its bitmap (one bit per page, unsigned longs). */
    static final StructLayout KVM_DIRTY_LOG = structLayout(
            JAVA_INT.withName("slot"), JAVA_INT.withName("padding1"), JAVA_LONG.withName("dirty_bitmap"))
            .withName("kvm_dirty_log");

    /** struct kvm_msr_entry. */
    static final StructLayout KVM_MSR_ENTRY = structLayout(
            JAVA_INT.withName("index"), JAVA_INT.withName("reserved"), JAVA_LONG.withName("data"))
            .withName("kvm_msr_entry");

    /** struct kvm_msrs header (entries follow). */
    static final StructLayout KVM_MSRS = structLayout(
            JAVA_INT.withName("nmsrs"), JAVA_INT.withName("pad")).withName("kvm_msrs");

    /** struct kvm_cpuid_entry2. */
    static final StructLayout KVM_CPUID_ENTRY2 = structLayout(
            JAVA_INT.withName("function"), JAVA_INT.withName("index"), JAVA_INT.withName("flags"),
            JAVA_INT.withName("eax"), JAVA_INT.withName("ebx"), JAVA_INT.withName("ecx"), JAVA_INT.withName("edx"),
            sequenceLayout(3, JAVA_INT).withName("padding")).withName("kvm_cpuid_entry2");

    /** struct kvm_cpuid2 header (entries follow). */
    static final StructLayout KVM_CPUID2 = structLayout(
            JAVA_INT.withName("nent"), JAVA_INT.withName("padding")).withName("kvm_cpuid2");

    /** struct kvm_stats_header. */
    static final StructLayout KVM_STATS_HEADER = structLayout(
            JAVA_INT.withName("flags"), JAVA_INT.withName("name_size"), JAVA_INT.withName("num_desc"),
            JAVA_INT.withName("id_offset"), JAVA_INT.withName("desc_offset"), JAVA_INT.withName("data_offset"))
            .withName("kvm_stats_header");

    /** struct kvm_stats_desc without its flexible name. */
    static final StructLayout KVM_STATS_DESC = structLayout(
            JAVA_INT.withName("flags"), JAVA_SHORT.withName("exponent"), JAVA_SHORT.withName("size"),
            JAVA_INT.withName("offset"), JAVA_INT.withName("bucket_size")).withName("kvm_stats_desc");

    /** struct kvm_irq_level: the GSI and its new level. */
    static final StructLayout KVM_IRQ_LEVEL = structLayout(
            JAVA_INT.withName("irq"), JAVA_INT.withName("level")).withName("kvm_irq_level");

    /** struct kvm_pit_config: flags and padding. */
    static final StructLayout KVM_PIT_CONFIG = structLayout(
            JAVA_INT.withName("flags"), sequenceLayout(15, JAVA_INT).withName("pad")).withName("kvm_pit_config");

    /** struct kvm_irqfd. */
    static final StructLayout KVM_IRQFD_LAYOUT = structLayout(
            JAVA_INT.withName("fd"), JAVA_INT.withName("gsi"), JAVA_INT.withName("flags"),
            JAVA_INT.withName("resamplefd"), sequenceLayout(16, JAVA_BYTE).withName("pad")).withName("kvm_irqfd");

    /** struct kvm_irq_routing_entry: gsi, type, flags, pad, then a 32-byte union (irqchip: chip and pin; hv_sint: vCPU and SINT). */
    static final StructLayout KVM_IRQ_ROUTING_ENTRY = structLayout(
            JAVA_INT.withName("gsi"), JAVA_INT.withName("type"), JAVA_INT.withName("flags"), JAVA_INT.withName("pad"),
            JAVA_INT.withName("u0"), JAVA_INT.withName("u1"), sequenceLayout(24, JAVA_BYTE).withName("rest"))
            .withName("kvm_irq_routing_entry");

    /** struct kvm_irq_routing: the number of entries and flags; the entries follow. */
    static final StructLayout KVM_IRQ_ROUTING = structLayout(JAVA_INT.withName("nr"), JAVA_INT.withName("flags"))
            .withName("kvm_irq_routing");

    /** struct kvm_ioeventfd. */
    static final StructLayout KVM_IOEVENTFD_LAYOUT = structLayout(
            JAVA_LONG.withName("datamatch"), JAVA_LONG.withName("addr"), JAVA_INT.withName("len"),
            JAVA_INT.withName("fd"), JAVA_INT.withName("flags"), sequenceLayout(36, JAVA_BYTE).withName("pad"))
            .withName("kvm_ioeventfd");

    // ---- saved state: structs the VMM keeps whole, as bytes (only their size and a few fields matter here) ----

    /** struct kvm_fpu: the legacy FPU/SSE area, where KVM has no XSAVE. */
    static final MemoryLayout KVM_FPU = sequenceLayout(416, JAVA_BYTE).withName("kvm_fpu");
    /** struct kvm_xsave without the flexible tail KVM_GET_XSAVE2 may add. */
    static final MemoryLayout KVM_XSAVE = sequenceLayout(1024, JAVA_INT).withName("kvm_xsave");
    /** struct kvm_xcrs: count, flags, 16 {xcr, reserved, value}, 16 u64 padding. */
    static final MemoryLayout KVM_XCRS = structLayout(
            JAVA_INT.withName("nr_xcrs"), JAVA_INT.withName("flags"),
            sequenceLayout(16, structLayout(JAVA_INT.withName("xcr"), JAVA_INT.withName("reserved"), JAVA_LONG.withName("value")))
                    .withName("xcrs"),
            sequenceLayout(16, JAVA_LONG).withName("padding")).withName("kvm_xcrs");
    /** struct kvm_lapic_state: the local APIC's register page. */
    static final MemoryLayout KVM_LAPIC_STATE = sequenceLayout(1024, JAVA_BYTE).withName("kvm_lapic_state");
    /** struct kvm_mp_state. */
    static final StructLayout KVM_MP_STATE = structLayout(JAVA_INT.withName("mp_state")).withName("kvm_mp_state");
    /** struct kvm_vcpu_events: pending exception, interrupt, NMI, SIPI, SMM. */
    static final MemoryLayout KVM_VCPU_EVENTS = sequenceLayout(64, JAVA_BYTE).withName("kvm_vcpu_events");
    /** struct kvm_debugregs: db[4], dr6, dr7, flags, reserved[9]. */
    static final MemoryLayout KVM_DEBUGREGS = sequenceLayout(16, JAVA_LONG).withName("kvm_debugregs");
    /** struct kvm_msr_list header (u32 indices follow). */
    static final StructLayout KVM_MSR_LIST = structLayout(JAVA_INT.withName("nmsrs")).withName("kvm_msr_list");
    /** struct kvm_irqchip: chip id, pad, a 512-byte union (PIC or IOAPIC state). */
    static final StructLayout KVM_IRQCHIP = structLayout(
            JAVA_INT.withName("chip_id"), JAVA_INT.withName("pad"), sequenceLayout(512, JAVA_BYTE).withName("chip"))
            .withName("kvm_irqchip");
    static final int KVM_IRQCHIP_PIC_MASTER = 0;
    static final int KVM_IRQCHIP_PIC_SLAVE = 1;
    static final int KVM_IRQCHIP_IOAPIC = 2;
    /** struct kvm_pic_state's interrupt mask register (after last_irr and irr), in the chip union. */
    static final long PIC_STATE_IMR = 2;
    /** struct kvm_pit_state2: three channels, flags, reserved. */
    static final MemoryLayout KVM_PIT_STATE2 = sequenceLayout(112, JAVA_BYTE).withName("kvm_pit_state2");
    /** struct kvm_clock_data. */
    static final StructLayout KVM_CLOCK_DATA = structLayout(
            JAVA_LONG.withName("clock"), JAVA_INT.withName("flags"), JAVA_INT.withName("pad0"),
            JAVA_LONG.withName("realtime"), JAVA_LONG.withName("host_tsc"), sequenceLayout(4, JAVA_INT).withName("pad"))
            .withName("kvm_clock_data");

    // ---- struct kvm_run: the fields the run loop reads, as offsets (the union is read by exit type) ----

    static final StructLayout KVM_RUN_HEADER = structLayout(
            JAVA_BYTE.withName("request_interrupt_window"), JAVA_BYTE.withName("immediate_exit"),
            paddingLayout(6), JAVA_INT.withName("exit_reason"), JAVA_BYTE.withName("ready_for_interrupt_injection"),
            JAVA_BYTE.withName("if_flag"), JAVA_SHORT.withName("flags"), JAVA_LONG.withName("cr8"),
            JAVA_LONG.withName("apic_base")).withName("kvm_run");

    static final long RUN_IMMEDIATE_EXIT = offset(KVM_RUN_HEADER, "immediate_exit");
    static final long RUN_EXIT_REASON = offset(KVM_RUN_HEADER, "exit_reason");
    /** The exit union starts right after the header. */
    static final long RUN_UNION = KVM_RUN_HEADER.byteSize();

    static final StructLayout KVM_RUN_IO = structLayout(
            JAVA_BYTE.withName("direction"), JAVA_BYTE.withName("size"), JAVA_SHORT.withName("port"),
            JAVA_INT.withName("count"), JAVA_LONG.withName("data_offset")).withName("io");
    static final long RUN_IO_DIRECTION = RUN_UNION + offset(KVM_RUN_IO, "direction");
    static final long RUN_IO_SIZE = RUN_UNION + offset(KVM_RUN_IO, "size");
    static final long RUN_IO_PORT = RUN_UNION + offset(KVM_RUN_IO, "port");
    static final long RUN_IO_COUNT = RUN_UNION + offset(KVM_RUN_IO, "count");
    static final long RUN_IO_DATA_OFFSET = RUN_UNION + offset(KVM_RUN_IO, "data_offset");

    static final StructLayout KVM_RUN_MMIO = structLayout(
            JAVA_LONG.withName("phys_addr"), sequenceLayout(8, JAVA_BYTE).withName("data"),
            JAVA_INT.withName("len"), JAVA_BYTE.withName("is_write"), paddingLayout(3)).withName("mmio");
    static final long RUN_MMIO_PHYS_ADDR = RUN_UNION + offset(KVM_RUN_MMIO, "phys_addr");
    static final long RUN_MMIO_DATA = RUN_UNION + offset(KVM_RUN_MMIO, "data");
    static final long RUN_MMIO_LEN = RUN_UNION + offset(KVM_RUN_MMIO, "len");
    static final long RUN_MMIO_IS_WRITE = RUN_UNION + offset(KVM_RUN_MMIO, "is_write");

    /** fail_entry.hardware_entry_failure_reason, internal.suberror, system_event.type, hw.hardware_exit_reason. */
    static final long RUN_UNION_FIRST_LONG = RUN_UNION;

    /**
     * struct kvm_hyperv_exit: type, 4 bytes of padding, then the union; for an HCALL, input (the
     * hypercall's control word), result (set by the VMM), params[2].
     */
    static final long RUN_HYPERV_TYPE = RUN_UNION;
    static final long RUN_HYPERV_HCALL_INPUT = RUN_UNION + 8;
    static final long RUN_HYPERV_HCALL_RESULT = RUN_UNION + 16;
    static final long RUN_HYPERV_HCALL_PARAM0 = RUN_UNION + 24;
    static final long RUN_HYPERV_HCALL_PARAM1 = RUN_UNION + 32;
    /** For a SYNIC exit: the MSR written, then SCONTROL's, SIEFP's and SIMP's values after the write. */
    static final long RUN_HYPERV_SYNIC_MSR = RUN_UNION + 8;
    static final long RUN_HYPERV_SYNIC_CONTROL = RUN_UNION + 16;
    static final long RUN_HYPERV_SYNIC_EVT_PAGE = RUN_UNION + 24;
    static final long RUN_HYPERV_SYNIC_MSG_PAGE = RUN_UNION + 32;
    static final int KVM_EXIT_HYPERV_SYNIC = 1;
    static final int KVM_EXIT_HYPERV_HCALL = 2;

    /** struct kvm_enable_cap: cap, flags, args[4], pad[64]. */
    static final StructLayout KVM_ENABLE_CAP_LAYOUT = structLayout(
            JAVA_INT.withName("cap"), JAVA_INT.withName("flags"), sequenceLayout(4, JAVA_LONG).withName("args"),
            sequenceLayout(64, JAVA_BYTE).withName("pad")).withName("kvm_enable_cap");

    static final int KVM_EXIT_IO_IN = 0;
    static final int KVM_EXIT_IO_OUT = 1;

    // ---- exit reasons ----
    static final int KVM_EXIT_UNKNOWN = 0;
    static final int KVM_EXIT_EXCEPTION = 1;
    static final int KVM_EXIT_IO = 2;
    static final int KVM_EXIT_HYPERCALL = 3;
    static final int KVM_EXIT_DEBUG = 4;
    static final int KVM_EXIT_HLT = 5;
    static final int KVM_EXIT_MMIO = 6;
    static final int KVM_EXIT_IRQ_WINDOW_OPEN = 7;
    static final int KVM_EXIT_SHUTDOWN = 8;
    static final int KVM_EXIT_FAIL_ENTRY = 9;
    static final int KVM_EXIT_INTR = 10;
    static final int KVM_EXIT_INTERNAL_ERROR = 17;
    static final int KVM_EXIT_SYSTEM_EVENT = 24;
    static final int KVM_EXIT_HYPERV = 27;

    // ---- ioctls ----
    static final long KVM_GET_API_VERSION = io(0x00);
    static final long KVM_CREATE_VM = io(0x01);
    static final long KVM_CHECK_EXTENSION = io(0x03);
    static final long KVM_GET_VCPU_MMAP_SIZE = io(0x04);
    static final long KVM_GET_SUPPORTED_CPUID = iowr(0x05, KVM_CPUID2.byteSize());
    static final long KVM_CREATE_VCPU = io(0x41);
    static final long KVM_SET_USER_MEMORY_REGION = iow(0x46, KVM_USERSPACE_MEMORY_REGION.byteSize());
    static final long KVM_SET_TSS_ADDR = io(0x47);
    static final long KVM_GET_DIRTY_LOG = iow(0x42, KVM_DIRTY_LOG.byteSize());
    static final long KVM_SET_IDENTITY_MAP_ADDR = iow(0x48, 8);
    static final long KVM_CREATE_IRQCHIP = io(0x60);
    static final long KVM_IRQ_LINE = iow(0x61, KVM_IRQ_LEVEL.byteSize());
    static final long KVM_IRQFD = iow(0x76, KVM_IRQFD_LAYOUT.byteSize());
    /** Replaces the VM's whole GSI routing table (the kernel's default PIC and IOAPIC routes included). */
    static final long KVM_SET_GSI_ROUTING = iow(0x6a, KVM_IRQ_ROUTING.byteSize());
    static final long KVM_CREATE_PIT2 = iow(0x77, KVM_PIT_CONFIG.byteSize());
    static final long KVM_IOEVENTFD = iow(0x79, KVM_IOEVENTFD_LAYOUT.byteSize());
    static final long KVM_RUN = io(0x80);
    static final long KVM_GET_REGS = ior(0x81, KVM_REGS.byteSize());
    static final long KVM_SET_REGS = iow(0x82, KVM_REGS.byteSize());
    static final long KVM_GET_SREGS = ior(0x83, KVM_SREGS.byteSize());
    static final long KVM_SET_SREGS = iow(0x84, KVM_SREGS.byteSize());
    static final long KVM_GET_MSRS = iowr(0x88, KVM_MSRS.byteSize());
    static final long KVM_SET_MSRS = iow(0x89, KVM_MSRS.byteSize());
    static final long KVM_SET_CPUID2 = iow(0x90, KVM_CPUID2.byteSize());
    static final long KVM_GET_STATS_FD = io(0xce);
    static final long KVM_GET_MSR_INDEX_LIST = iowr(0x02, KVM_MSR_LIST.byteSize());
    static final long KVM_GET_IRQCHIP = iowr(0x62, KVM_IRQCHIP.byteSize());
    /** _IOR, not _IOW: a slip in the kernel's header that the ABI keeps. */
    static final long KVM_SET_IRQCHIP = ior(0x63, KVM_IRQCHIP.byteSize());
    static final long KVM_SET_CLOCK = iow(0x7b, KVM_CLOCK_DATA.byteSize());
    static final long KVM_GET_CLOCK = ior(0x7c, KVM_CLOCK_DATA.byteSize());
    static final long KVM_GET_FPU = ior(0x8c, KVM_FPU.byteSize());
    static final long KVM_SET_FPU = iow(0x8d, KVM_FPU.byteSize());
    static final long KVM_GET_LAPIC = ior(0x8e, KVM_LAPIC_STATE.byteSize());
    static final long KVM_SET_LAPIC = iow(0x8f, KVM_LAPIC_STATE.byteSize());
    static final long KVM_GET_MP_STATE = ior(0x98, KVM_MP_STATE.byteSize());
    static final long KVM_SET_MP_STATE = iow(0x99, KVM_MP_STATE.byteSize());
    /** A VM ioctl; the vCPU's KVM_GET_VCPU_EVENTS shares its number, not its size. */
    static final long KVM_GET_PIT2 = ior(0x9f, KVM_PIT_STATE2.byteSize());
    static final long KVM_SET_PIT2 = iow(0xa0, KVM_PIT_STATE2.byteSize());
    static final long KVM_GET_VCPU_EVENTS = ior(0x9f, KVM_VCPU_EVENTS.byteSize());
    static final long KVM_SET_VCPU_EVENTS = iow(0xa0, KVM_VCPU_EVENTS.byteSize());
    static final long KVM_GET_DEBUGREGS = ior(0xa1, KVM_DEBUGREGS.byteSize());
    static final long KVM_SET_DEBUGREGS = iow(0xa2, KVM_DEBUGREGS.byteSize());
    static final long KVM_GET_XSAVE = ior(0xa4, KVM_XSAVE.byteSize());
    static final long KVM_SET_XSAVE = iow(0xa5, KVM_XSAVE.byteSize());
    static final long KVM_GET_XCRS = ior(0xa6, KVM_XCRS.byteSize());
    static final long KVM_SET_XCRS = iow(0xa7, KVM_XCRS.byteSize());
    /** Like KVM_GET_XSAVE, for an XSAVE area larger than 4 KiB (its size: KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2)). */
    static final long KVM_GET_XSAVE2 = ior(0xcf, KVM_XSAVE.byteSize());
    /** A vCPU ioctl here: turns a capability on for that vCPU (SynIC). */
    static final long KVM_ENABLE_CAP = iow(0xa3, KVM_ENABLE_CAP_LAYOUT.byteSize());
    /** The Hyper-V CPUID leaves (0x40000000..) KVM emulates, asked of a vCPU. */
    static final long KVM_GET_SUPPORTED_HV_CPUID = iowr(0xc1, KVM_CPUID2.byteSize());

    static final int KVM_API_VERSION = 12;
    static final int KVM_CAP_USER_MEMORY = 3;
    static final int KVM_CAP_IRQCHIP = 0;
    static final int KVM_CAP_IRQFD = 32;
    static final int KVM_CAP_PIT2 = 33;
    static final int KVM_CAP_IOEVENTFD = 36;
    static final int KVM_CAP_MP_STATE = 14;
    static final int KVM_CAP_ADJUST_CLOCK = 39;
    static final int KVM_CAP_VCPU_EVENTS = 41;
    static final int KVM_CAP_DEBUGREGS = 50;
    static final int KVM_CAP_XSAVE = 55;
    static final int KVM_CAP_XCRS = 56;
    static final int KVM_CAP_XSAVE2 = 208;
    static final int KVM_CAP_HYPERV = 44;
    static final int KVM_CAP_HYPERV_SYNIC2 = 148;
    static final int KVM_CAP_HYPERV_CPUID = 167;
    static final int KVM_IOEVENTFD_FLAG_DEASSIGN = 1 << 2;
    static final int KVM_IRQFD_FLAG_DEASSIGN = 1;
    /** The irqfd also signals a resample eventfd when the guest acknowledges the interrupt. */
    static final int KVM_IRQFD_FLAG_RESAMPLE = 2;
    static final int KVM_CAP_IRQ_ROUTING = 25;
    static final int KVM_CAP_IRQFD_RESAMPLE = 82;
    static final int KVM_IRQ_ROUTING_IRQCHIP = 1;
    static final int KVM_IRQ_ROUTING_HV_SINT = 4;
    /** KVM handles port 0x61 (speaker/PIT gate), so calibration loops need no exit. */
    static final int KVM_PIT_SPEAKER_DUMMY = 1;

    static long offset(MemoryLayout layout, String... path) {
        MemoryLayout.PathElement[] elements = new MemoryLayout.PathElement[path.length];
        for (int i = 0; i < path.length; i++) {
            elements[i] = MemoryLayout.PathElement.groupElement(path[i]);
        }
        return layout.byteOffset(elements);
    }

    static String exitReasonName(int reason) {
        return switch (reason) {
            case KVM_EXIT_UNKNOWN -> "KVM_EXIT_UNKNOWN";
            case KVM_EXIT_EXCEPTION -> "KVM_EXIT_EXCEPTION";
            case KVM_EXIT_IO -> "KVM_EXIT_IO";
            case KVM_EXIT_HYPERCALL -> "KVM_EXIT_HYPERCALL";
            case KVM_EXIT_DEBUG -> "KVM_EXIT_DEBUG";
            case KVM_EXIT_HLT -> "KVM_EXIT_HLT";
            case KVM_EXIT_MMIO -> "KVM_EXIT_MMIO";
            case KVM_EXIT_IRQ_WINDOW_OPEN -> "KVM_EXIT_IRQ_WINDOW_OPEN";
            case KVM_EXIT_SHUTDOWN -> "KVM_EXIT_SHUTDOWN";
            case KVM_EXIT_FAIL_ENTRY -> "KVM_EXIT_FAIL_ENTRY";
            case KVM_EXIT_INTR -> "KVM_EXIT_INTR";
            case KVM_EXIT_INTERNAL_ERROR -> "KVM_EXIT_INTERNAL_ERROR";
            case KVM_EXIT_SYSTEM_EVENT -> "KVM_EXIT_SYSTEM_EVENT";
            case KVM_EXIT_HYPERV -> "KVM_EXIT_HYPERV";
            default -> "exit reason " + reason;
        };
    }
}
