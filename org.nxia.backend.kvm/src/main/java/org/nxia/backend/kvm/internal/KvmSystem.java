package org.nxia.backend.kvm.internal;

import static org.nxia.backend.kvm.internal.KvmAbi.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** The KVM system object: an open {@code /dev/kvm}. */
final class KvmSystem implements AutoCloseable {

    static final String DEVICE = "/dev/kvm";

    private final int fd;
    private final int apiVersion;
    private final int vcpuMmapSize;

    private KvmSystem(int fd) {
        this.fd = fd;
        try {
            this.apiVersion = Libc.ioctl(fd, KVM_GET_API_VERSION, 0L, "KVM_GET_API_VERSION");
            if (apiVersion != KVM_API_VERSION) {
                throw new KvmException("ioctl(KVM_GET_API_VERSION)", 0,
                        "KVM API version " + apiVersion + " is not the stable version 12 this backend speaks");
            }
            if (Libc.ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY, "KVM_CHECK_EXTENSION") <= 0) {
                throw new KvmException("ioctl(KVM_CHECK_EXTENSION)", 0, "KVM lacks KVM_CAP_USER_MEMORY");
            }
            this.vcpuMmapSize = Libc.ioctl(fd, KVM_GET_VCPU_MMAP_SIZE, 0L, "KVM_GET_VCPU_MMAP_SIZE");
        } catch (RuntimeException e) {
            Libc.close(fd);
            throw e;
        }
    }

    /** Opens {@code /dev/kvm}. @throws KvmException naming the errno and what to do */
    static KvmSystem open() {
        int fd;
        try {
            fd = Libc.open(DEVICE, Libc.O_RDWR | Libc.O_CLOEXEC);
        } catch (KvmException e) {
            throw new KvmException(e.call(), e.errno(), KvmProbe.explainOpenFailure(e));
        }
        return new KvmSystem(fd);
    }

    int apiVersion() {
        return apiVersion;
    }

    int vcpuMmapSize() {
        return vcpuMmapSize;
    }

    private MemorySegment cpuid;

    /**
     * KVM_GET_SUPPORTED_CPUID, asked once (it does not change) and kept for
     * every vCPU this system creates.
     *
     * @return the struct kvm_cpuid2 bytes, ready for KVM_SET_CPUID2
     */
    synchronized MemorySegment supportedCpuid() {
        if (cpuid == null) {
            cpuid = Cpuid.query(fd, KVM_GET_SUPPORTED_CPUID, "KVM_GET_SUPPORTED_CPUID", 64, 4096, Arena.global());
        }
        return cpuid;
    }

    private int[] msrIndices;

    /** KVM_GET_MSR_INDEX_LIST, asked once: the MSRs a vCPU's saved state holds. */
    synchronized int[] msrIndices() {
        if (msrIndices == null) {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment probe = a.allocate(KVM_MSR_LIST);
                try {
                    Libc.ioctl(fd, KVM_GET_MSR_INDEX_LIST, probe, "KVM_GET_MSR_INDEX_LIST");
                } catch (KvmException e) {
                    if (e.errno() != Libc.E2BIG) {
                        throw e;
                    }
                }
                int count = probe.get(ValueLayout.JAVA_INT, 0);   // KVM writes the count back before E2BIG
                if (count < 0 || count > 4096) {
                    throw new KvmException("ioctl(KVM_GET_MSR_INDEX_LIST)", 0, "KVM lists " + count + " MSRs; at most 4096 are taken");
                }
                MemorySegment list = a.allocate(KVM_MSR_LIST.byteSize() + 4L * count, 4);
                list.set(ValueLayout.JAVA_INT, 0, count);
                Libc.ioctl(fd, KVM_GET_MSR_INDEX_LIST, list, "KVM_GET_MSR_INDEX_LIST");
                int listed = Math.min(count, list.get(ValueLayout.JAVA_INT, 0));
                msrIndices = list.asSlice(KVM_MSR_LIST.byteSize(), 4L * listed).toArray(ValueLayout.JAVA_INT);
            }
        }
        return msrIndices.clone();
    }

    /** KVM_CREATE_VM(0): a new VM file descriptor. */
    int createVmFd() {
        return Libc.ioctl(fd, KVM_CREATE_VM, 0L, "KVM_CREATE_VM");
    }

    @Override
    public void close() {
        Libc.close(fd);
    }
}
