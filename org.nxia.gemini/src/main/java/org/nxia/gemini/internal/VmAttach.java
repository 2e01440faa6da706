package org.nxia.gemini.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import org.nxia.gemini.api.Gemini;
import org.nxia.gemini.api.GeminiSession;
import org.nxia.portal.api.PortalArena;
import org.nxia.portal.api.PortalException;
import org.nxia.portal.api.PortalRegion;
import org.nxia.portal.api.PortalStructures;
import org.nxia.portal.api.Portals;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.api.HostCallContext;
import org.nxia.vmm.api.HostFunction;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmState;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;

/**
 * The host call {@code gemini} (docs/gemini-protocol.md): ATTACH wraps the
 * rings a guest formatted in its own RAM and opens its session; KICK is the
 * doorbell that wakes the host's sleeping receiver; REGION binds the Portal
 * region (a block arena the VM maps) that by-reference arguments live in.
 */
@Component(property = {HostFunction.NAME_PROPERTY + "=gemini", HostFunction.POLICY_PROPERTY + "=" + HostFunction.POLICES_ITSELF})
public final class VmAttach implements HostFunction {
    static final int MAGIC = 0x4d47584e; // "NXGM"
    static final int VERSION = 1;
    static final int ATTACH = 1;
    static final int KICK = 2;
    static final int REGION = 3;
    static final int ATTACH_SIZE = 48;
    static final int REGION_SIZE = 24;
    static final int CTL_SIZE = 64;

    private final GeminiImpl gemini;
    /**
     * Per VM with a Gemini session so far: its one destroy action's state. Sessions come and go
     * (CLOSE, then ATTACH again); each releases its transport and session here when it closes,
     * so a long-lived VM holds one small entry, not every session it ever had.
     */
    private final Map<String, Attached> attached = new ConcurrentHashMap<>();

    /** The open session of a VM and the transport over its RAM, or none. */
    private static final class Attached {
        private RingTransport transport;
        private GeminiSession session;
        private boolean destroyed;

        synchronized void release(RingTransport t) {
            if (transport == t) {
                transport = null;
                session = null;
            }
        }

        void destroy(String why) {
            RingTransport t;
            GeminiSession s;
            synchronized (this) {
                destroyed = true;
                t = transport;
                s = session;
                transport = null;
                session = null;
            }
            if (t != null) {
                t.kill(why); // nothing touches the VM's memory after this
                s.close(why);
            }
        }
    }

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC)
    volatile Portals portals;

    private final PortalStructures structures;

    @Activate
    public VmAttach(@Reference GeminiImpl gemini, @Reference PortalStructures structures) {
        this.gemini = gemini;
        this.structures = structures;
    }

    @Override
    public long call(MemorySegment argument, MemorySegment result) {
        throw new IllegalStateException("the gemini host call needs to know its VM");
    }

    @Override
    public long call(HostCallContext context, MemorySegment arg, MemorySegment result) {
        if (arg.byteSize() < 8 || arg.get(ValueLayout.JAVA_INT_UNALIGNED, 0) != MAGIC
                || arg.get(ValueLayout.JAVA_SHORT_UNALIGNED, 4) != VERSION) {
            throw new IllegalArgumentException("gemini host call: bad magic or version");
        }
        VirtualMachine vm = context.vm();
        int op = arg.get(ValueLayout.JAVA_SHORT_UNALIGNED, 6);
        if (op == KICK) {
            gemini.wake(vm.id());
            return 0;
        }
        if (op == REGION && arg.byteSize() >= REGION_SIZE) {
            bindRegion(vm, regionName(arg));
            return 0;
        }
        if (op != ATTACH || arg.byteSize() < ATTACH_SIZE) {
            throw new IllegalArgumentException("gemini host call: unknown op " + op + " or short argument");
        }
        long g2h = arg.get(ValueLayout.JAVA_LONG_UNALIGNED, 8);
        long g2hLen = arg.get(ValueLayout.JAVA_LONG_UNALIGNED, 16);
        long h2g = arg.get(ValueLayout.JAVA_LONG_UNALIGNED, 24);
        long h2gLen = arg.get(ValueLayout.JAVA_LONG_UNALIGNED, 32);
        long ctl = arg.get(ValueLayout.JAVA_LONG_UNALIGNED, 40);
        GuestMemory memory = context.memory();
        MemorySegment rx = region(memory, g2h, g2hLen, "g2h ring");
        MemorySegment tx = region(memory, h2g, h2gLen, "h2g ring");
        MemorySegment c = region(memory, ctl, CTL_SIZE, "control block");
        if (overlap(g2h, g2hLen, h2g, h2gLen) || overlap(g2h, g2hLen, ctl, CTL_SIZE) || overlap(h2g, h2gLen, ctl, CTL_SIZE)) {
            throw new IllegalArgumentException("gemini host call: the rings and the control block overlap");
        }
        RingTransport transport = new RingTransport(structures.attachSpsc(rx), structures.attachSpsc(tx), c, () -> vm.state() == VmState.STOPPED
                ? "the VM " + vm.id() + " stopped" + vm.result().map(r -> ": " + r.detail()).orElse("")
                : null);
        Attached a = attached(context);
        synchronized (a) {
            if (a.destroyed) {
                throw new IllegalArgumentException("gemini host call: the VM " + vm.id() + " is being destroyed");
            }
            a.session = gemini.openSession(transport, vm.spec().name(), vm.id(), false, () -> a.release(transport));
            a.transport = transport;
        }
        return 0;
    }

    /** The VM's entry; its first ATTACH registers the one destroy action, which drops the entry too. */
    private Attached attached(HostCallContext context) {
        String vmId = context.vm().id();
        Attached fresh = new Attached();
        Attached a = attached.putIfAbsent(vmId, fresh);
        if (a != null) {
            return a;
        }
        context.onDestroy(() -> {
            attached.remove(vmId, fresh);
            fresh.destroy("the VM " + vmId + " was destroyed");
        });
        return fresh;
    }

    /** VMs with an entry (tests). */
    int attachedVms() {
        return attached.size();
    }

    /** The region name at offset 8: 1 to 15 bytes, NUL-padded to 16. */
    private static String regionName(MemorySegment arg) {
        byte[] raw = arg.asSlice(8, 16).toArray(ValueLayout.JAVA_BYTE);
        int n = 0;
        while (n < raw.length && raw[n] != 0) {
            n++;
        }
        String name = new String(raw, 0, n, StandardCharsets.US_ASCII);
        if (!name.matches(Portals.NAME_PATTERN)) {
            throw new IllegalArgumentException("gemini host call: REGION names no valid region ('" + name + "')");
        }
        return name;
    }

    /**
     * Binds {@code name} as the reference region of the VM's session. The VM must map it (its
     * profile's grant is the capability); the host attaches the region's block arena with the
     * untrusted-header checks and keeps the geometry, so a guest that rewrites the header later
     * confuses only itself.
     */
    private void bindRegion(VirtualMachine vm, String name) {
        GeminiSession session = gemini.sessionOfVm(vm.id()).orElseThrow(
                () -> new IllegalArgumentException("gemini host call: REGION before ATTACH (the VM has no session)"));
        Portals p = portals;
        if (p == null) {
            throw new IllegalArgumentException("gemini host call: REGION needs the Portal service, which is not running");
        }
        boolean mapped = p.mappings().stream().anyMatch(m -> m.vmId().equals(vm.id()) && m.region().equals(name) && m.mapped());
        PortalRegion region = p.find(name).orElse(null);
        if (!mapped || region == null) {
            throw new IllegalArgumentException("gemini host call: the VM " + vm.id() + " does not map region " + name);
        }
        PortalArena arena;
        try {
            arena = structures.attachArena(region.segment());
        } catch (PortalException e) {
            throw new IllegalArgumentException("gemini host call: region " + name + " holds no block arena: " + e.getMessage());
        }
        try {
            session.bindReferenceRegion(name, arena);
        } catch (IllegalStateException e) {
            throw new IllegalArgumentException("gemini host call: " + e.getMessage());
        }
    }

    private MemorySegment region(GuestMemory memory, long gpa, long length, String what) {
        if ((gpa & 7) != 0 || length < structures.spscHeaderSize() && !what.equals("control block") || length > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("gemini host call: " + what + " at 0x" + Long.toHexString(gpa) + " (" + length
                    + " bytes) must be 8-byte aligned and of a usable size");
        }
        return memory.slice(gpa, length); // bounds-checked against guest RAM
    }

    private static boolean overlap(long a, long alen, long b, long blen) {
        return a < b + blen && b < a + alen;
    }
}
