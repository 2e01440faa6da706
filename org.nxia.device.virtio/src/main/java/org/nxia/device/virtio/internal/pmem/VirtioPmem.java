package org.nxia.device.virtio.internal.pmem;

import org.nxia.device.virtio.internal.mmio.SingleQueueBackend;
import org.nxia.device.virtio.internal.mmio.VirtioMmioTransport;
import org.nxia.device.virtio.internal.queue.DescriptorChain;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.api.device.SavedStateCodec;

/**
 * virtio-pmem (device ID 27, virtio 1.2 section 5.19): a guest-physical range
 * the driver maps as persistent memory (Linux: /dev/pmem0, DAX-capable), and
 * one request queue whose only request, FLUSH, completes once the range's
 * backing is durable. The range itself is a KVM memory slot the VMM mapped;
 * this device only tells the driver where it is and serves flushes.
 */
final class VirtioPmem extends SingleQueueBackend {

    static final int DEVICE_ID = 27;
    /** struct virtio_pmem_config: le64 start, le64 size. */
    static final int CONFIG_BYTES = 16;
    static final int REQ_TYPE_FLUSH = 0;
    /** struct virtio_pmem_req { le32 type; } and struct virtio_pmem_resp { le32 ret; }. */
    static final int REQ_BYTES = 4;
    static final int RESP_BYTES = 4;
    static final int RET_OK = 0;
    static final int RET_ERROR = 1;

    /** Makes the region's content durable: msync for a file-backed region, nothing for anonymous memory. */
    @FunctionalInterface
    interface Backing {
        void sync() throws Exception;
    }

    private final GuestMemory memory;
    private final long start;
    private final long size;
    private final boolean readOnly;
    private final Backing backing;
    private long flushes;
    private long errors;

    VirtioPmem(GuestMemory memory, long start, long size, boolean readOnly, Backing backing) {
        this.memory = memory;
        this.start = start;
        this.size = size;
        this.readOnly = readOnly;
        this.backing = backing;
    }

    @Override
    public int deviceId() {
        return DEVICE_ID;
    }

    /**
     * Every interrupt of this device's line may be its region's doorbell (portal:connect, Portals.ring),
     * which the transport does not see: each shows as a configuration change, which the System VM's
     * virtio-pmem driver counts as a doorbell (distro/system-vm/patches) and a stock one ignores, but
     * takes as handled instead of as a stray interrupt.
     */
    @Override
    public int interruptStatusAlways() {
        return VirtioMmioTransport.INT_CONFIG_CHANGE;
    }

    @Override
    public long features() {
        return 0;   // no VIRTIO_PMEM_F_SHMEM_REGION: the range is given by start and size
    }

    @Override
    public long readConfig(int offset, int size) {
        long value = 0;
        for (int i = size - 1; i >= 0; i--) {
            int at = offset + i;
            long field = at < 8 ? start : this.size;
            int b = at >= 0 && at < CONFIG_BYTES ? (int) (field >>> (8 * (at & 7))) & 0xff : 0;
            value = (value << 8) | b;
        }
        return value;
    }

    /**
     * One request: a readable {@code virtio_pmem_req}, a writable
     * {@code virtio_pmem_resp}. A chain with no room for the response is
     * returned unanswered; a short or unknown request is answered with an error.
     */
    @Override
    protected long serve(DescriptorChain c) {
        int response = c.readableCount();
        if (c.writableCount() < 1 || c.length(response) < RESP_BYTES) {
            errors++;
            return 0;   // nowhere to put the answer: the driver broke the protocol
        }
        int ret;
        if (c.readableCount() < 1 || c.length(0) < REQ_BYTES) {
            ret = RET_ERROR;
        } else if (memory.readInt(c.address(0)) != REQ_TYPE_FLUSH) {
            ret = RET_ERROR;
        } else {
            ret = flush();
        }
        if (ret != RET_OK) {
            errors++;
        }
        memory.writeInt(c.address(response), ret);
        return RESP_BYTES;
    }

    private int flush() {
        try {
            backing.sync();
            flushes++;
            return RET_OK;
        } catch (Exception e) {
            return RET_ERROR;   // the region was deleted or the file cannot be written: the driver reports EIO
        }
    }

    static final String SAVED_KIND = "virtio-pmem region";

    /** Where the driver found the range: the region itself is configuration (the portal it names). */
    @Override
    public byte[] saveState() {
        return SavedStateCodec.writer(SAVED_KIND, 1).i64(start).i64(size).toBytes();
    }

    /** Refuses a range mapped elsewhere or with another size: the guest's mappings of it would point at the wrong memory. */
    @Override
    public Runnable checkState(byte[] saved) {
        SavedStateCodec.Reader in = SavedStateCodec.reader(saved, SAVED_KIND, 1);
        long savedStart = in.i64();
        long savedSize = in.i64();
        in.end();
        if (savedStart != start || savedSize != size) {
            throw in.refuse("the guest knows the range at 0x%x, 0x%x bytes; it is now at 0x%x, 0x%x bytes"
                    .formatted(savedStart, savedSize, start, size));
        }
        return () -> { };
    }

    /** Counters and diagnostics: where the range is, and the flushes. */
    record State(long start, long size, boolean readOnly, long flushes, long errors) {
    }

    @Override
    public Record state() {
        return new State(start, size, readOnly, flushes, errors);
    }
}
