package org.nxia.vmm.internal;

import java.lang.management.ManagementFactory;

/**
 * Bytes allocated by the current thread, from HotSpot's per-thread counter;
 * -1 where the JVM does not offer it. Shows that the exit path allocates
 * nothing.
 */
final class ThreadAllocation {

    private ThreadAllocation() {
    }

    static long current() {
        try {
            if (ManagementFactory.getThreadMXBean() instanceof com.sun.management.ThreadMXBean bean
                    && bean.isThreadAllocatedMemorySupported() && bean.isThreadAllocatedMemoryEnabled()) {
                return bean.getCurrentThreadAllocatedBytes();
            }
        } catch (LinkageError e) {
            // com.sun.management not exported to this bundle
        }
        return -1;
    }
}
