package org.nxia.vmm.internal;

import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import org.nxia.vmm.api.GuestMemory;
import org.nxia.vmm.api.HostCallContext;
import org.nxia.vmm.api.HostFunction;

/**
 * Serves the host-call port (docs/guest-abi.md, "Host calls"): checks the
 * guest's request block and both buffers against guest RAM, finds the host
 * function by name, calls it and writes status and result length back.
 * Functions come and go with their OSGi services.
 */
public final class HostCalls {

    static final int MAGIC = 0x4348_584e;  // "NXHC"
    static final int VERSION = 1;
    static final int BLOCK_SIZE = 88;
    static final int NAME_OFFSET = 16;
    static final int NAME_SIZE = 32;
    static final long MAX_ARGUMENT = 1 << 20;

    public static final int OK = 0;
    public static final int EINVAL = -1;
    public static final int ENOENT = -2;
    public static final int EFAULT = -3;
    public static final int E2BIG = -4;
    public static final int EFAIL = -5;

    private final Map<String, HostFunction> functions = new ConcurrentHashMap<>();

    public void add(String name, HostFunction function) {
        functions.put(name, function);
    }

    public void remove(String name, HostFunction function) {
        functions.remove(name, function);
    }

    public Map<String, HostFunction> functions() {
        return Map.copyOf(functions);
    }

    /**
     * Handles one call whose block is at {@code block}.
     *
     * @return the status written to the block, or {@link #EINVAL} when the block itself is unusable
     */
    public int handle(HostCallContext context, long block) {
        GuestMemory memory = context.memory();
        if ((block & 7) != 0 || !memory.contains(block, BLOCK_SIZE)) {
            return EINVAL;  // nowhere to write a status: the caller fails the VM
        }
        int status = dispatch(context, memory, block);
        memory.writeInt(block + 8, status);
        return status;
    }

    private int dispatch(HostCallContext context, GuestMemory memory, long block) {
        if (memory.readInt(block) != MAGIC || Short.toUnsignedInt((short) (memory.readInt(block + 4) & 0xffff)) != VERSION) {
            return EINVAL;
        }
        memory.writeLong(block + 80, 0);
        String name = readName(memory.read(block + NAME_OFFSET, NAME_SIZE));
        if (name == null) {
            return EINVAL;
        }
        long argGpa = memory.readLong(block + 48);
        long argLen = memory.readLong(block + 56);
        long retGpa = memory.readLong(block + 64);
        long retCap = memory.readLong(block + 72);
        if (argLen < 0 || argLen > MAX_ARGUMENT) {
            return E2BIG;
        }
        if (!memory.contains(argGpa, argLen) || !memory.contains(retGpa, retCap)) {
            return EFAULT;
        }
        HostFunction function = functions.get(name);
        if (function == null) {
            return ENOENT;
        }
        MemorySegment argument = memory.slice(argGpa, argLen).asReadOnly();
        MemorySegment result = memory.slice(retGpa, retCap);
        long written;
        try {
            written = function.call(context, argument, result);
        } catch (Exception | LinkageError e) {
            return EFAIL;
        }
        if (written < 0 || written > retCap) {
            return E2BIG;
        }
        memory.writeLong(block + 80, written);
        return OK;
    }

    /** The NUL-padded ASCII name, or null if it is empty or not printable ASCII. */
    static String readName(byte[] raw) {
        int len = 0;
        while (len < raw.length && raw[len] != 0) {
            byte c = raw[len];
            if (c < 0x21 || c > 0x7e) {
                return null;
            }
            len++;
        }
        return len == 0 || len == raw.length ? null : new String(raw, 0, len, StandardCharsets.US_ASCII);
    }
}
