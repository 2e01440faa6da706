package org.nxia.gemini.internal;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import org.nxia.gemini.api.CallContext;
import org.nxia.gemini.api.ErrorCode;
import org.nxia.gemini.api.GeminiException;
import org.nxia.gemini.api.GeminiSession;
import org.nxia.lsm.policy.api.GuestProcess;
import org.nxia.portal.api.PortalArena;
import org.nxia.portal.api.PortalException;
import org.nxia.portal.api.PortalRegion;
import org.nxia.portal.api.PortalStructures;
import org.nxia.portal.api.Portals;
import org.nxia.portal.api.Ring;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;

/**
 * Ring sessions of System VM processes (docs/gemini-protocol.md, "Ring sessions"): the host
 * service {@value #SERVICE} (built into Gemini's core, not the service registry), method {@code ring}, which a Linux process calls through its VM's
 * broker to have its calls carried over a pair of Portal SPSC rings it formatted in a region the
 * VM maps as device DAX, instead of through the broker and vsock.
 *
 * <p>The call opens a Gemini session over those rings (one {@link RingTransport}, as for a
 * micro-VM) under the VM's manifest, every call on it carrying the asking process's identity,
 * which the broker took from the guest kernel; then it holds until the session ends. Its end is
 * the process's: the broker cancels the call when the process's connection closes (it died), the
 * session closes then, and also at the lifetime the process asked for, when the VM stops or no
 * longer maps the region. The host's receiver polls the ring (it spins briefly, then sleeps at
 * most 1 ms at a time: a process has no doorbell it may ring); it rings the region's doorbell
 * when the process said it sleeps.
 */
@Component(immediate = true, service = {})
public final class SystemVmRings {

    static final String SERVICE = "gemini";
    /** Ring sessions one VM holds at once (docs/limits.md). */
    static final int MAX_PER_VM = 8;
    /** The longest lifetime a process may ask for: a day. */
    static final long MAX_LIFETIME_MS = 86_400_000L;
    static final int CTL_SIZE = 64;
    /** The largest ring a process may format: the Portal ABI's largest capacity and its header. */
    static final long MAX_RING = (1L << 30) + 192;
    /** How often the held call looks at its session, its process and its region. */
    static final long WATCH_MS = 20;

    /** A VM's regions as the ring sessions need them (the Portal service in the platform; a map in tests). */
    interface Regions {
        /** The region {@code name} if VM {@code vmId} maps it now, else null. */
        MemorySegment mapped(String vmId, String name);

        /** Rings {@code name}'s doorbell in VM {@code vmId} (its waiting processes wake); never throws. */
        void ring(String vmId, String name);
    }

    /** A live ring session's spans of its region: no other ring session may take them. */
    private record Held(String region, long from, long to, String vmId, long session) {
        boolean overlaps(String r, long f, long t) {
            return region.equals(r) && from < t && f < to;
        }
    }

    private final GeminiImpl gemini;
    private final PortalStructures structures;
    private final Regions regions;
    private final List<Held> held = new ArrayList<>();

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC)
    volatile Portals portals;

    @Activate
    public SystemVmRings(@Reference GeminiImpl gemini, @Reference PortalStructures structures) {
        this.gemini = gemini;
        this.structures = structures;
        this.regions = platformRegions();
        gemini.addBuiltin(SERVICE, this);
    }

    @Deactivate
    void deactivate() {
        gemini.removeBuiltin(SERVICE, this);
    }

    private Regions platformRegions() {
        return new Regions() {
            @Override
            public MemorySegment mapped(String vmId, String name) {
                Portals p = portals;
                if (p == null || p.mappings().stream().noneMatch(m -> m.vmId().equals(vmId) && m.region().equals(name) && m.mapped())) {
                    return null;
                }
                return p.find(name).map(PortalRegion::segment).orElse(null);
            }

            @Override
            public void ring(String vmId, String name) {
                Portals p = portals;
                try {
                    if (p != null) {
                        p.ring(vmId, name);
                    }
                } catch (IllegalArgumentException e) {
                    // no interrupt for the region there (not shown as device DAX): the process's wait times out and polls
                }
            }
        };
    }

    /** For tests: regions from {@code regions}, no OSGi; served by {@code gemini} as in the platform. */
    SystemVmRings(GeminiImpl gemini, PortalStructures structures, Regions regions) {
        this.gemini = gemini;
        this.structures = structures;
        this.regions = regions;
        gemini.addBuiltin(SERVICE, this);
    }

    /**
     * Opens a ring session for the calling process over the rings it formatted in {@code region}
     * ({@code g2h}: it produces, {@code h2g}: it consumes, {@code ctl}: the 64-byte control block;
     * region offsets and byte lengths) and holds until the session ends, at the latest after
     * {@code lifetimeMs}. Returns why it ended.
     */
    public String ring(CallContext c, String region, long g2h, long g2hLen, long h2g, long h2gLen, long ctl, long lifetimeMs) {
        GeminiSession broker = c.session();
        String vmId = broker.vmId();
        GuestProcess process = c.process().orElse(null);
        if (process == null || vmId == null || gemini.sessionOfVm(vmId).orElse(null) != broker) {
            throw refused("a ring session is a System VM process's: ask through the VM's broker (libnxia nxia_ring_session_open)");
        }
        if (!region.matches(Portals.NAME_PATTERN)) {
            throw refused("'" + region + "' is no region name");
        }
        if (broker.referenceRegion().filter(region::equals).isPresent()) {
            // its block arena is every process's and the host's: rings there could overwrite blocks in use
            throw refused("region " + region + " holds the VM's reference arena: put the rings in a region of their own");
        }
        if (lifetimeMs < 1 || lifetimeMs > MAX_LIFETIME_MS) {
            throw refused("lifetime " + lifetimeMs + " ms: give 1 to " + MAX_LIFETIME_MS);
        }
        MemorySegment memory = regions.mapped(vmId, region);
        if (memory == null) {
            throw refused("the VM " + vmId + " does not map region " + region);
        }
        MemorySegment rxMem = span(memory, region, "g2h ring", g2h, g2hLen, structures.spscHeaderSize(), MAX_RING);
        MemorySegment txMem = span(memory, region, "h2g ring", h2g, h2gLen, structures.spscHeaderSize(), MAX_RING);
        MemorySegment ctlMem = span(memory, region, "control block", ctl, CTL_SIZE, CTL_SIZE, CTL_SIZE);
        if (overlap(g2h, g2hLen, h2g, h2gLen) || overlap(g2h, g2hLen, ctl, CTL_SIZE) || overlap(h2g, h2gLen, ctl, CTL_SIZE)) {
            throw refused("the rings and the control block overlap");
        }
        Ring rx;
        Ring tx;
        try {
            rx = structures.attachSpsc(rxMem);
            tx = structures.attachSpsc(txMem);
        } catch (PortalException e) {
            throw refused("no ring where the process said (format both before asking): " + e.getMessage());
        }
        long deadline = System.nanoTime() + lifetimeMs * 1_000_000L;
        Session session;
        synchronized (held) {
            long mine = held.stream().filter(h -> h.vmId().equals(vmId)).map(Held::session).distinct().count();
            if (mine >= MAX_PER_VM) {
                throw new GeminiException(ErrorCode.BUSY, "the VM " + vmId + " holds " + MAX_PER_VM + " ring sessions already");
            }
            for (long[] s : new long[][] {{g2h, g2hLen}, {h2g, h2gLen}, {ctl, CTL_SIZE}}) {
                for (Held h : held) {
                    if (h.overlaps(region, s[0], s[0] + s[1])) {
                        throw refused("region " + region + " bytes [0x" + Long.toHexString(s[0]) + ", 0x" + Long.toHexString(s[0] + s[1])
                                + ") belong to ring session " + h.session());
                    }
                }
            }
            RingTransport transport = new RingTransport(rx, tx, ctlMem, () -> null, () -> regions.ring(vmId, region));
            session = gemini.openProcessSession(transport, broker.profile(), vmId, process, () -> { });
            for (long[] s : new long[][] {{g2h, g2hLen}, {h2g, h2gLen}, {ctl, CTL_SIZE}}) {
                held.add(new Held(region, s[0], s[0] + s[1], vmId, session.id()));
            }
        }
        String why;
        try {
            PortalArena references = broker instanceof Session b ? b.referenceArena() : null;
            if (references != null) {
                session.bindReferenceRegion(broker.referenceRegion().orElseThrow(), references);
            }
            why = hold(c, session, vmId, region, deadline);
        } finally {
            synchronized (held) {
                held.removeIf(h -> h.session() == session.id());
            }
        }
        return "ring session " + session.id() + " ended: " + why;
    }

    /** Waits until the session ends or must: the process gone, its lifetime over, the VM stopped, the region unmapped. */
    private String hold(CallContext c, Session session, String vmId, String region, long deadline) {
        String why = null;
        while (why == null) {
            if (!session.isOpen()) {
                return session.closeReason();
            }
            if (c.cancelled()) {
                why = "the process ended (its broker connection closed) or cancelled it";
            } else if (System.nanoTime() - deadline >= 0) {
                why = "its lifetime ran out";
            } else if (regions.mapped(vmId, region) == null) {
                why = "the VM " + vmId + " no longer maps region " + region;
            } else {
                try {
                    Thread.sleep(WATCH_MS);
                } catch (InterruptedException e) {
                    why = "the process ended (its broker connection closed) or cancelled it";
                }
            }
        }
        session.close(why);
        return why;
    }

    /** Live ring sessions of VM {@code vmId} (tests, gemini:sessions shows them among all sessions). */
    int sessionsOf(String vmId) {
        synchronized (held) {
            return (int) held.stream().filter(h -> h.vmId().equals(vmId)).map(Held::session).distinct().count();
        }
    }

    /**
     * The span [{@code at}, {@code at + length}) of the region, checked against it: Linux's first
     * 2 MiB are its own (the device-DAX info block), so a span starts at or after
     * {@link Portals#LINUX_DAX_OFFSET}; 64-byte aligned; {@code min} to {@code max} bytes; wholly in the region.
     */
    private static MemorySegment span(MemorySegment memory, String region, String what, long at, long length, long min, long max) {
        if (at < Portals.LINUX_DAX_OFFSET || (at & 63) != 0 || length < min || length > max || length > memory.byteSize()
                || at > memory.byteSize() - length) {
            throw refused(what + " at region offset 0x" + Long.toHexString(at) + " (" + length + " bytes) is not a 64-byte aligned span of "
                    + min + (min == max ? "" : " to " + max) + " bytes within region " + region + " past its first 2 MiB [0x"
                    + Long.toHexString(Portals.LINUX_DAX_OFFSET) + ", 0x" + Long.toHexString(memory.byteSize()) + ")");
        }
        return memory.asSlice(at, length);
    }

    private static boolean overlap(long a, long alen, long b, long blen) {
        return a < b + blen && b < a + alen;
    }

    private static GeminiException refused(String why) {
        return new GeminiException(ErrorCode.BAD_ARGS, "gemini.ring: " + why);
    }
}
