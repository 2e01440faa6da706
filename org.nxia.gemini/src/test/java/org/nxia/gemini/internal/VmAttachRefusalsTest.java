package org.nxia.gemini.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.reflect.Proxy;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Hashtable;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.nxia.gemini.api.GeminiSession;
import org.nxia.lsm.policy.internal.PolicyService;
import org.nxia.portal.api.PortalMapping;
import org.nxia.portal.api.PortalRegion;
import org.nxia.portal.api.Portals;
import org.nxia.portal.internal.SpscRing;
import org.nxia.portal.internal.Structures;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.api.HostCallContext;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.VmState;

/**
 * What the gemini host call refuses of a guest's argument: magic, version, op, sizes, ring
 * placement, and REGION's binding; and what a stopped or destroyed VM does to its session. The
 * VM is a stand-in at the HostCallContext seam (its id, profile and state); guest RAM is a segment.
 */
class VmAttachRefusalsTest {
    static final Duration T = Duration.ofSeconds(5);
    static final int CAP = 4096;
    static final long SIZE = SpscRing.requiredSize(CAP);
    static final long HDR = SpscRing.DATA_OFFSET;

    private final Arena arena = Arena.ofShared();
    private final MemorySegment ram = arena.allocate(0x10000, 4096);
    private final GuestMemory memory = GuestMemory.of(0, ram);
    private final List<Runnable> destroyActions = new ArrayList<>();
    private volatile VmState state = VmState.RUNNING;
    private volatile Optional<VmResult> result = Optional.empty();
    private GeminiImpl gemini;
    private VmAttach attach;
    private HostCallContext context;

    @BeforeEach
    void open() throws Exception {
        PolicyService policy = new PolicyService();
        Hashtable<String, Object> config = new Hashtable<>();
        config.put("manifest", "profile attach\nallow out echo.*\n");
        policy.updated("m", config);
        gemini = new GeminiImpl(policy, Map.of("echo", new SessionTest.Echo()), Map.of());
        attach = new VmAttach(gemini, new Structures());
        VirtualMachine vm = (VirtualMachine) Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[] {VirtualMachine.class},
                (p, m, a) -> switch (m.getName()) {
                    case "id" -> "vm-r";
                    case "spec" -> VmProfile.of(Path.of("attach.elf")).withName("attach");
                    case "state" -> state;
                    case "result" -> result;
                    default -> throw new UnsupportedOperationException(m.getName());
                });
        context = new HostCallContext() {
            @Override
            public VirtualMachine vm() {
                return vm;
            }

            @Override
            public GuestMemory memory() {
                return memory;
            }

            @Override
            public void onDestroy(Runnable action) {
                destroyActions.add(action);
            }
        };
    }

    @AfterEach
    void close() {
        gemini.deactivate();
        arena.close();
    }

    private MemorySegment arg(int size, int magic, int version, int op) {
        MemorySegment a = arena.allocate(Math.max(size, 1), 8).asSlice(0, size);
        if (size >= 8) {
            a.set(ValueLayout.JAVA_INT, 0, magic);
            a.set(ValueLayout.JAVA_SHORT, 4, (short) version);
            a.set(ValueLayout.JAVA_SHORT, 6, (short) op);
        }
        return a;
    }

    private MemorySegment attachArg(long g2h, long g2hLen, long h2g, long h2gLen, long ctl) {
        MemorySegment a = arg(VmAttach.ATTACH_SIZE, VmAttach.MAGIC, VmAttach.VERSION, VmAttach.ATTACH);
        a.set(ValueLayout.JAVA_LONG, 8, g2h);
        a.set(ValueLayout.JAVA_LONG, 16, g2hLen);
        a.set(ValueLayout.JAVA_LONG, 24, h2g);
        a.set(ValueLayout.JAVA_LONG, 32, h2gLen);
        a.set(ValueLayout.JAVA_LONG, 40, ctl);
        return a;
    }

    private MemorySegment regionArg(String name) {
        MemorySegment a = arg(VmAttach.REGION_SIZE, VmAttach.MAGIC, VmAttach.VERSION, VmAttach.REGION);
        byte[] b = name.getBytes(StandardCharsets.US_ASCII);
        MemorySegment.copy(b, 0, a, ValueLayout.JAVA_BYTE, 8, b.length);
        return a;
    }

    private long call(MemorySegment arg) {
        return attach.call(context, arg, arena.allocate(8));
    }

    private String refusal(MemorySegment arg) {
        return assertThrows(IllegalArgumentException.class, () -> call(arg)).getMessage();
    }

    /** Attaches rings formatted at g2h and h2g; returns the host's session. */
    private GeminiSession attached(long g2h, long h2g, long ctl) {
        SpscRing.format(memory.slice(g2h, SIZE), CAP);
        SpscRing.format(memory.slice(h2g, SIZE), CAP);
        assertEquals(0, call(attachArg(g2h, SIZE, h2g, SIZE, ctl)));
        return gemini.sessionOfVm("vm-r").orElseThrow();
    }

    private Session guest(long g2h, long h2g) {
        return gemini.client(new RingTransport(SpscRing.attach(memory.slice(h2g, SIZE)), SpscRing.attach(memory.slice(g2h, SIZE)),
                arena.allocate(64, 64), () -> null), new PeerHandler(), "guest");
    }

    @Test
    void theArgumentsHeaderIsChecked() {
        assertThrows(IllegalStateException.class, () -> attach.call(arg(8, VmAttach.MAGIC, 1, VmAttach.KICK), arena.allocate(8)),
                "the call needs its VM");
        assertEquals(0, call(arg(8, VmAttach.MAGIC, VmAttach.VERSION, VmAttach.KICK)), "an 8-byte KICK, no session yet: nothing to wake");
        assertEquals("gemini host call: bad magic or version", refusal(arg(7, VmAttach.MAGIC, 1, VmAttach.KICK)));
        assertEquals("gemini host call: bad magic or version", refusal(arg(8, VmAttach.MAGIC + 1, 1, VmAttach.KICK)));
        assertEquals("gemini host call: bad magic or version", refusal(arg(8, VmAttach.MAGIC, 2, VmAttach.KICK)));
        assertEquals("gemini host call: unknown op 9 or short argument", refusal(arg(48, VmAttach.MAGIC, 1, 9)));
        assertEquals("gemini host call: unknown op 1 or short argument", refusal(arg(47, VmAttach.MAGIC, 1, VmAttach.ATTACH)));
        assertEquals("gemini host call: unknown op 3 or short argument", refusal(arg(23, VmAttach.MAGIC, 1, VmAttach.REGION)));
        assertEquals(List.of(), gemini.sessions());
    }

    @Test
    void ringsMustBeAlignedUsableAndInsideGuestRam() {
        assertTrue(refusal(attachArg(0x1004, SIZE, 0x4000, SIZE, 0x8000)).startsWith("gemini host call: g2h ring at 0x1004 ("), "misaligned");
        assertTrue(refusal(attachArg(0x1000, SIZE, 0x4004, SIZE, 0x8000)).startsWith("gemini host call: h2g ring at 0x4004"));
        assertTrue(refusal(attachArg(0x1000, SIZE, 0x4000, SIZE, 0x8004)).startsWith("gemini host call: control block at 0x8004"));
        assertTrue(refusal(attachArg(0x1000, HDR - 1, 0x4000, SIZE, 0x8000)).contains("(" + (HDR - 1) + " bytes) must be 8-byte aligned"
                + " and of a usable size"), "shorter than a ring header");
        assertTrue(refusal(attachArg(0x1000, 1L << 31, 0x4000, SIZE, 0x8000)).contains("usable size"), "over 2 GiB");
        RuntimeException outside = assertThrows(RuntimeException.class, () -> call(attachArg(0x1000, Integer.MAX_VALUE, 0x4000, SIZE, 0x8000)));
        assertFalse(outside.getMessage().contains("usable size"), "2 GiB - 1 is a size; guest RAM refuses it: " + outside.getMessage());
        RuntimeException headerOnly = assertThrows(RuntimeException.class, () -> call(attachArg(0x1000, HDR, 0x4000, SIZE, 0x8000)));
        assertFalse(headerOnly.getMessage().contains("usable size"), "a ring of just its header passes this check: " + headerOnly.getMessage());
        assertEquals(List.of(), gemini.sessions());
    }

    @Test
    void ringsAndTheControlBlockMustNotOverlap() {
        long g = 0x1000;
        assertTrue(refusal(attachArg(g, SIZE, g + SIZE - 8, SIZE, 0xc000)).endsWith("the rings and the control block overlap"));
        assertTrue(refusal(attachArg(g + SIZE - 8, SIZE, g, SIZE, 0xc000)).endsWith("overlap"), "h2g below g2h");
        assertTrue(refusal(attachArg(g, SIZE, 0x6000, SIZE, g + SIZE - 8)).endsWith("overlap"), "control block in g2h");
        assertTrue(refusal(attachArg(g, SIZE, 0x6000, SIZE, 0x6000 + SIZE - 8)).endsWith("overlap"), "control block in h2g");
        assertTrue(refusal(attachArg(0x6000, SIZE, g, SIZE, g - 56)).endsWith("overlap"), "control block running into h2g");
        assertEquals(List.of(), gemini.sessions());
        long h = (g + SIZE + 7) & ~7L;
        long c = (h + SIZE + 7) & ~7L;
        GeminiSession host = attached(h, g, c); // h2g, then g2h, then the control block: back to back
        Session guest = guest(h, g);
        assertEquals(3L, guest.call("echo", "add", T, 1L, 2L));
        guest.close("done");
    }

    @Test
    void controlBlockRightBeforeTheRingsIsFine() {
        long c = 0x1000;
        long g = c + VmAttach.CTL_SIZE;
        long h = (g + SIZE + 7) & ~7L;
        attached(g, h, c);
        Session guest = guest(g, h);
        assertEquals(3L, guest.call("echo", "add", T, 1L, 2L));
        guest.close("done");
    }

    /** A Portals stand-in: the mappings and regions a VM's portal devices would have made. */
    private static Portals portals(List<PortalMapping> mappings, Map<String, MemorySegment> regions) {
        return (Portals) Proxy.newProxyInstance(VmAttachRefusalsTest.class.getClassLoader(), new Class<?>[] {Portals.class},
                (p, m, a) -> switch (m.getName()) {
                    case "mappings" -> mappings;
                    case "find" -> Optional.ofNullable(regions.get((String) a[0])).map(s -> region((String) a[0], s));
                    default -> throw new UnsupportedOperationException(m.getName());
                });
    }

    private static PortalRegion region(String name, MemorySegment segment) {
        return (PortalRegion) Proxy.newProxyInstance(VmAttachRefusalsTest.class.getClassLoader(), new Class<?>[] {PortalRegion.class},
                (p, m, a) -> switch (m.getName()) {
                    case "name" -> name;
                    case "segment" -> segment;
                    default -> throw new UnsupportedOperationException(m.getName());
                });
    }

    private static PortalMapping mapping(String vm, String region, boolean mapped) {
        return (PortalMapping) Proxy.newProxyInstance(VmAttachRefusalsTest.class.getClassLoader(), new Class<?>[] {PortalMapping.class},
                (p, m, a) -> switch (m.getName()) {
                    case "vmId" -> vm;
                    case "region" -> region;
                    case "mapped" -> mapped;
                    default -> throw new UnsupportedOperationException(m.getName());
                });
    }

    @Test
    void regionBindsOnlyARegionTheVmMapsThatHoldsAnArena() {
        assertEquals("gemini host call: REGION before ATTACH (the VM has no session)", refusal(regionArg("refs")));
        GeminiSession host = attached(0x1000, 0x4000, 0x8000);
        assertEquals("gemini host call: REGION needs the Portal service, which is not running", refusal(regionArg("refs")));
        for (String bad : List.of("", "Refs", "abcdefghijklmnop", "-x")) {
            attach.portals = portals(List.of(), Map.of());
            assertEquals("gemini host call: REGION names no valid region ('" + bad + "')", refusal(regionArg(bad)), bad);
        }
        MemorySegment formatted = arena.allocate(1 << 16, 4096);
        new Structures().formatArena(formatted, 4096);
        MemorySegment blank = arena.allocate(1 << 16, 4096);
        Map<String, MemorySegment> regions = Map.of("refs", formatted, "blank", blank, "abcdefghijklmno", formatted);
        String notMapped = "gemini host call: the VM vm-r does not map region refs";
        for (List<PortalMapping> ms : List.of(List.<PortalMapping>of(), List.of(mapping("vm-other", "refs", true)),
                List.of(mapping("vm-r", "other", true)), List.of(mapping("vm-r", "refs", false)))) {
            attach.portals = portals(ms, regions);
            assertEquals(notMapped, refusal(regionArg("refs")));
        }
        attach.portals = portals(List.of(mapping("vm-r", "gone", true)), regions);
        assertEquals("gemini host call: the VM vm-r does not map region gone", refusal(regionArg("gone")), "mapped, but no such region");
        attach.portals = portals(List.of(mapping("vm-r", "blank", true)), regions);
        assertTrue(refusal(regionArg("blank")).startsWith("gemini host call: region blank holds no block arena: "));
        assertEquals(Optional.empty(), host.referenceRegion());

        attach.portals = portals(List.of(mapping("vm-other", "refs", true), mapping("vm-r", "abcdefghijklmno", true)), regions);
        assertEquals(0, call(regionArg("abcdefghijklmno")), "a 15-character name fills the field but its NUL");
        assertEquals(Optional.of("abcdefghijklmno"), host.referenceRegion());
        assertEquals("gemini host call: session " + host.id() + " already uses region abcdefghijklmno for references",
                refusal(regionArg("abcdefghijklmno")));
    }

    @Test
    void aStoppedVmClosesItsSessionSayingWhy() throws Exception {
        GeminiSession host = attached(0x1000, 0x4000, 0x8000);
        Session guest = guest(0x1000, 0x4000);
        assertEquals(3L, guest.call("echo", "add", T, 1L, 2L));
        result = Optional.of(new VmResult(VmResult.Reason.EXITED, 3, "exit status 3", new byte[0], Duration.ZERO));
        state = VmState.STOPPED;
        assertTrue(((Session) host).awaitClosed(T));
        assertEquals("the VM vm-r stopped: exit status 3", host.closeReason());
        guest.close("done");

        result = Optional.empty();
        state = VmState.RUNNING;
        GeminiSession again = attached(0x1000, 0x4000, 0x8000);
        state = VmState.STOPPED;
        assertTrue(((Session) again).awaitClosed(T));
        assertEquals("the VM vm-r stopped", again.closeReason());
    }

    /** Destroying the VM lets go of its RAM first: the guest's rings get no CLOSE frame after that. */
    @Test
    void destroyingTheVmKillsTheRingsBeforeClosing() throws Exception {
        GeminiSession host = attached(0x1000, 0x4000, 0x8000);
        Session guest = guest(0x1000, 0x4000);
        assertEquals(3L, guest.call("echo", "add", T, 1L, 2L));
        assertEquals(1, destroyActions.size());
        destroyActions.getFirst().run();
        assertFalse(host.isOpen());
        assertEquals("the VM vm-r was destroyed", host.closeReason());
        Thread.sleep(300);
        assertTrue(guest.isOpen(), "nothing was written to the destroyed VM's ring: " + guest.closeReason());
        guest.close("done");
        assertEquals(0, attach.attachedVms());
    }
}
