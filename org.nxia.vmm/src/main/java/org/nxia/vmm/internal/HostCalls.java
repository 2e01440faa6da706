package org.nxia.vmm.internal;

import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Collectors;

import org.nxia.lsm.policy.api.CallPolicy;
import org.nxia.lsm.policy.api.CallRequest;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.api.HostCallContext;
import org.nxia.vmm.api.HostFunction;

/**
 * Serves the host-call port (docs/guest-abi.md, "Host calls"): checks the
 * guest's request block and both buffers against guest RAM, finds the host
 * function by name, calls it and writes status and result length back.
 * Functions come and go with their OSGi services. Every call passes the call
 * policy first, as a Gemini call does (service {@value #POLICY_SERVICE}, the
 * function's name as the method), unless the function polices its own calls
 * ({@link HostFunction#POLICY_PROPERTY}); with no policy service every call is
 * refused, never let through.
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
    public static final int EPERM = -6;

    /** The service name host calls have in manifests: {@code allow out hostfunction.upper}. */
    public static final String POLICY_SERVICE = "hostfunction";

    private record Entry(HostFunction function, boolean policesItself) {
    }

    private final Map<String, Entry> functions = new ConcurrentHashMap<>();
    private volatile CallPolicy policy;

    public void add(String name, HostFunction function, boolean policesItself) {
        functions.put(name, new Entry(function, policesItself));
    }

    public void remove(String name, HostFunction function) {
        functions.computeIfPresent(name, (n, e) -> e.function() == function ? null : e);
    }

    public Map<String, HostFunction> functions() {
        return functions.entrySet().stream().collect(Collectors.toUnmodifiableMap(Map.Entry::getKey, e -> e.getValue().function()));
    }

    /** The policy every call passes; null refuses every call that does not police itself. */
    public void policy(CallPolicy policy) {
        this.policy = policy;
    }

    public void removePolicy(CallPolicy gone) {
        if (policy == gone) {
            policy = null;
        }
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
        Entry entry = functions.get(name);
        // The policy decides before the lookup: a denied guest cannot probe which functions exist.
        if ((entry == null || !entry.policesItself()) && !permitted(context, name)) {
            return EPERM;
        }
        if (entry == null) {
            return ENOENT;
        }
        HostFunction function = entry.function();
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

    private boolean permitted(HostCallContext context, String name) {
        CallPolicy p = policy;
        if (p == null) {
            return false;
        }
        String vm = context.vm().id();
        CallRequest request = new CallRequest(context.vm().spec().name(), 0, vm, "guest:" + vm,
                CallRequest.Direction.GUEST_TO_HOST, POLICY_SERVICE, name, false);
        return p.check(request).allowed();
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
