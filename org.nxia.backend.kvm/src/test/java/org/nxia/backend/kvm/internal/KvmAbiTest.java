package org.nxia.backend.kvm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.nxia.backend.kvm.internal.KvmAbi.*;

import org.junit.jupiter.api.Test;

/**
 * The layouts and ioctl numbers against the values of the kernel's
 * {@code <linux/kvm.h>} and {@code <asm/kvm.h>} for x86-64 (sizeof, offsetof
 * and the _IO* macros, as a C compiler computes them from the headers).
 */
class KvmAbiTest {

    @Test
    void structSizesMatchTheKernel() {
        assertEquals(144, KVM_REGS.byteSize(), "sizeof(struct kvm_regs)");
        assertEquals(24, KVM_SEGMENT.byteSize(), "sizeof(struct kvm_segment)");
        assertEquals(16, KVM_DTABLE.byteSize(), "sizeof(struct kvm_dtable)");
        assertEquals(312, KVM_SREGS.byteSize(), "sizeof(struct kvm_sregs)");
        assertEquals(32, KVM_USERSPACE_MEMORY_REGION.byteSize(), "sizeof(struct kvm_userspace_memory_region)");
        assertEquals(16, KVM_DIRTY_LOG.byteSize(), "sizeof(struct kvm_dirty_log)");
        assertEquals(16, KVM_MSR_ENTRY.byteSize(), "sizeof(struct kvm_msr_entry)");
        assertEquals(8, KVM_MSRS.byteSize(), "sizeof(struct kvm_msrs)");
        assertEquals(40, KVM_CPUID_ENTRY2.byteSize(), "sizeof(struct kvm_cpuid_entry2)");
        assertEquals(8, KVM_CPUID2.byteSize(), "sizeof(struct kvm_cpuid2)");
        assertEquals(104, KVM_ENABLE_CAP_LAYOUT.byteSize(), "sizeof(struct kvm_enable_cap)");
        assertEquals(24, KVM_STATS_HEADER.byteSize(), "sizeof(struct kvm_stats_header)");
        assertEquals(16, KVM_STATS_DESC.byteSize(), "sizeof(struct kvm_stats_desc)");
        assertEquals(8, KVM_IRQ_LEVEL.byteSize(), "sizeof(struct kvm_irq_level)");
        assertEquals(48, KVM_IRQ_ROUTING_ENTRY.byteSize(), "sizeof(struct kvm_irq_routing_entry)");
        assertEquals(8, KVM_IRQ_ROUTING.byteSize(), "sizeof(struct kvm_irq_routing), its entries apart");
        assertEquals(16, offset(KVM_IRQ_ROUTING_ENTRY, "u0"), "the union: irqchip.irqchip, hv_sint.vcpu");
        assertEquals(20, offset(KVM_IRQ_ROUTING_ENTRY, "u1"), "irqchip.pin, hv_sint.sint");
        assertEquals(64, KVM_PIT_CONFIG.byteSize(), "sizeof(struct kvm_pit_config)");
        assertEquals(32, KVM_IRQFD_LAYOUT.byteSize(), "sizeof(struct kvm_irqfd)");
        assertEquals(64, KVM_IOEVENTFD_LAYOUT.byteSize(), "sizeof(struct kvm_ioeventfd)");
        assertEquals(416, KVM_FPU.byteSize(), "sizeof(struct kvm_fpu)");
        assertEquals(4096, KVM_XSAVE.byteSize(), "sizeof(struct kvm_xsave)");
        assertEquals(392, KVM_XCRS.byteSize(), "sizeof(struct kvm_xcrs)");
        assertEquals(1024, KVM_LAPIC_STATE.byteSize(), "sizeof(struct kvm_lapic_state)");
        assertEquals(4, KVM_MP_STATE.byteSize(), "sizeof(struct kvm_mp_state)");
        assertEquals(64, KVM_VCPU_EVENTS.byteSize(), "sizeof(struct kvm_vcpu_events)");
        assertEquals(128, KVM_DEBUGREGS.byteSize(), "sizeof(struct kvm_debugregs)");
        assertEquals(4, KVM_MSR_LIST.byteSize(), "sizeof(struct kvm_msr_list)");
        assertEquals(520, KVM_IRQCHIP.byteSize(), "sizeof(struct kvm_irqchip)");
        assertEquals(112, KVM_PIT_STATE2.byteSize(), "sizeof(struct kvm_pit_state2)");
        assertEquals(48, KVM_CLOCK_DATA.byteSize(), "sizeof(struct kvm_clock_data)");
    }

    @Test
    void fieldOffsetsMatchTheKernel() {
        assertEquals(128, offset(KVM_REGS, "rip"));
        assertEquals(136, offset(KVM_REGS, "rflags"));
        assertEquals(12, offset(KVM_SEGMENT, "selector"));
        assertEquals(14, offset(KVM_SEGMENT, "type"));
        assertEquals(19, offset(KVM_SEGMENT, "l"));
        assertEquals(22, offset(KVM_SEGMENT, "unusable"));
        assertEquals(144, offset(KVM_SREGS, "tr"));
        assertEquals(168, offset(KVM_SREGS, "ldt"));
        assertEquals(192, offset(KVM_SREGS, "gdt"));
        assertEquals(208, offset(KVM_SREGS, "idt"));
        assertEquals(224, offset(KVM_SREGS, "cr0"));
        assertEquals(240, offset(KVM_SREGS, "cr3"));
        assertEquals(248, offset(KVM_SREGS, "cr4"));
        assertEquals(264, offset(KVM_SREGS, "efer"));
        assertEquals(272, offset(KVM_SREGS, "apic_base"));
        assertEquals(280, offset(KVM_SREGS, "interrupt_bitmap"));
        assertEquals(8, offset(KVM_USERSPACE_MEMORY_REGION, "guest_phys_addr"));
        assertEquals(24, offset(KVM_USERSPACE_MEMORY_REGION, "userspace_addr"));
        assertEquals(8, offset(KVM_DIRTY_LOG, "dirty_bitmap"));
        assertEquals(8, offset(KVM_MSR_ENTRY, "data"));
        assertEquals(12, offset(KVM_CPUID_ENTRY2, "eax"));
        assertEquals(20, offset(KVM_STATS_HEADER, "data_offset"));
        assertEquals(8, offset(KVM_STATS_DESC, "offset"));
        assertEquals(4, offset(KVM_IRQ_LEVEL, "level"));
        assertEquals(4, offset(KVM_IRQFD_LAYOUT, "gsi"));
        assertEquals(12, offset(KVM_IRQFD_LAYOUT, "resamplefd"));
        assertEquals(8, offset(KVM_IOEVENTFD_LAYOUT, "addr"));
        assertEquals(16, offset(KVM_IOEVENTFD_LAYOUT, "len"));
        assertEquals(20, offset(KVM_IOEVENTFD_LAYOUT, "fd"));
        assertEquals(24, offset(KVM_IOEVENTFD_LAYOUT, "flags"));
        assertEquals(8, offset(KVM_IRQCHIP, "chip"));
        assertEquals(8, offset(KVM_CLOCK_DATA, "flags"));
        assertEquals(16, offset(KVM_CLOCK_DATA, "realtime"));
    }

    @Test
    void kvmRunOffsetsMatchTheKernel() {
        assertEquals(1, RUN_IMMEDIATE_EXIT);
        assertEquals(8, RUN_EXIT_REASON);
        assertEquals(32, RUN_UNION, "the exit union of struct kvm_run");
        assertEquals(32, RUN_IO_DIRECTION);
        assertEquals(33, RUN_IO_SIZE);
        assertEquals(34, RUN_IO_PORT);
        assertEquals(36, RUN_IO_COUNT);
        assertEquals(40, RUN_IO_DATA_OFFSET);
        // struct kvm_hyperv_exit in the union: type, pad1, then hcall's input and result
        assertEquals(32, RUN_HYPERV_TYPE);
        assertEquals(40, RUN_HYPERV_HCALL_INPUT);
        assertEquals(48, RUN_HYPERV_HCALL_RESULT);
        assertEquals(56, RUN_HYPERV_HCALL_PARAM0);
        assertEquals(64, RUN_HYPERV_HCALL_PARAM1);
        // ...and synic's msr, pad2, control, evt_page, msg_page
        assertEquals(40, RUN_HYPERV_SYNIC_MSR);
        assertEquals(48, RUN_HYPERV_SYNIC_CONTROL);
        assertEquals(56, RUN_HYPERV_SYNIC_EVT_PAGE);
        assertEquals(64, RUN_HYPERV_SYNIC_MSG_PAGE);
        assertEquals(32, RUN_MMIO_PHYS_ADDR);
        assertEquals(40, RUN_MMIO_DATA);
        assertEquals(48, RUN_MMIO_LEN);
        assertEquals(52, RUN_MMIO_IS_WRITE);
    }

    @Test
    void ioctlNumbersMatchTheKernel() {
        assertEquals(0xAE00L, KVM_GET_API_VERSION);
        assertEquals(0xAE01L, KVM_CREATE_VM);
        assertEquals(0xAE03L, KVM_CHECK_EXTENSION);
        assertEquals(0xAE04L, KVM_GET_VCPU_MMAP_SIZE);
        assertEquals(0xC008AE05L, KVM_GET_SUPPORTED_CPUID);
        assertEquals(0xAE41L, KVM_CREATE_VCPU);
        assertEquals(0x4020AE46L, KVM_SET_USER_MEMORY_REGION);
        assertEquals(0xAE47L, KVM_SET_TSS_ADDR);
        assertEquals(0x4010AE42L, KVM_GET_DIRTY_LOG);
        assertEquals(0xAE80L, KVM_RUN);
        assertEquals(0x8090AE81L, KVM_GET_REGS);
        assertEquals(0x4090AE82L, KVM_SET_REGS);
        assertEquals(0x8138AE83L, KVM_GET_SREGS);
        assertEquals(0x4138AE84L, KVM_SET_SREGS);
        assertEquals(0xC008AE88L, KVM_GET_MSRS);
        assertEquals(0x4008AE89L, KVM_SET_MSRS);
        assertEquals(0x4008AE90L, KVM_SET_CPUID2);
        assertEquals(0xAECEL, KVM_GET_STATS_FD);
        assertEquals(0x4008AE48L, KVM_SET_IDENTITY_MAP_ADDR);
        assertEquals(0xAE60L, KVM_CREATE_IRQCHIP);
        assertEquals(0x4008AE61L, KVM_IRQ_LINE);
        assertEquals(0x4020AE76L, KVM_IRQFD);
        assertEquals(0x4008AE6AL, KVM_SET_GSI_ROUTING);
        assertEquals(0x4040AE77L, KVM_CREATE_PIT2);
        assertEquals(0x4040AE79L, KVM_IOEVENTFD);
        assertEquals(0x81A0AE8CL, KVM_GET_FPU);
        assertEquals(0x41A0AE8DL, KVM_SET_FPU);
        assertEquals(0x9000AEA4L, KVM_GET_XSAVE);
        assertEquals(0x5000AEA5L, KVM_SET_XSAVE);
        assertEquals(0x9000AECFL, KVM_GET_XSAVE2);
        assertEquals(0x4068AEA3L, KVM_ENABLE_CAP);
        assertEquals(0xC008AEC1L, KVM_GET_SUPPORTED_HV_CPUID);
        assertEquals(0x8188AEA6L, KVM_GET_XCRS);
        assertEquals(0x4188AEA7L, KVM_SET_XCRS);
        assertEquals(0x8400AE8EL, KVM_GET_LAPIC);
        assertEquals(0x4400AE8FL, KVM_SET_LAPIC);
        assertEquals(0x8004AE98L, KVM_GET_MP_STATE);
        assertEquals(0x4004AE99L, KVM_SET_MP_STATE);
        assertEquals(0x8040AE9FL, KVM_GET_VCPU_EVENTS);
        assertEquals(0x4040AEA0L, KVM_SET_VCPU_EVENTS);
        assertEquals(0x8080AEA1L, KVM_GET_DEBUGREGS);
        assertEquals(0x4080AEA2L, KVM_SET_DEBUGREGS);
        assertEquals(0xC004AE02L, KVM_GET_MSR_INDEX_LIST);
        assertEquals(0xC208AE62L, KVM_GET_IRQCHIP);
        assertEquals(0x8208AE63L, KVM_SET_IRQCHIP);
        assertEquals(0x8070AE9FL, KVM_GET_PIT2);
        assertEquals(0x4070AEA0L, KVM_SET_PIT2);
        assertEquals(0x8030AE7CL, KVM_GET_CLOCK);
        assertEquals(0x4030AE7BL, KVM_SET_CLOCK);
    }
}
